/**
 * A hostile agent against the egress proxy, end to end: a real bottle whose agent writes raw bytes
 * (test/fixtures/raw-client.mjs: HTTP/1.1 requests and WebSocket frames by hand, over CONNECT and
 * TLS with the bottle's CA) to a fake HTTPS and WebSocket upstream container standing in for
 * api.anthropic.com and friends. Each attack comes after its allowed twin, asserts the proxy's
 * own refusal (its tag, or close code 1008), and reads the upstream's log to show that nothing of
 * it arrived.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFile, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { AuditRecord } from "../../../src/shared/egress-config.js";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { TestBottles } from "../../helpers/bottles.js";
import { upstreamCerts, upstreamLog, type UpstreamEvent } from "../../helpers/fake-upstream.js";

const FIXTURES = join(import.meta.dirname, "../../fixtures");
const TOKEN_ENV = "BB_TEST_HOSTILE_KEY";
const TOKEN = `sk-ant-api03-${randomBytes(45).toString("base64url")}`;
const API = "api.anthropic.com";
const FILES = "files.example.test";
const WS = "ws.example.test";

const t = new TestBottles();
const agent = t.agent("hostile");

/** One raw HTTP/1.1 request: the request line, the header lines as given, the body as given. */
const request = (line: string, headers: readonly string[], body = ""): string =>
  `${line}\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n${body}`;

interface RawResponse {
  status?: number;
  refusal?: string;
  body?: string;
  event?: string;
}

interface WsEvent {
  event: "open" | "message" | "close" | "end" | "timeout" | "refused" | "connect-refused";
  text?: string;
  code?: number;
  reason?: string;
  status?: number;
  refusal?: string;
}

describe("a hostile agent against the egress proxy, end to end", { timeout: 15 * 60_000 }, () => {
  let slug = "";
  let upstream = "";
  let upstreamIp = "";
  let certs = "";
  let net = "";
  let placeholder = "";

  const writeManifest = async (withWsRoute: boolean) => {
    const routes = [
      { host: API, paths: ["/v1/"], auth: { header: "x-api-key", token_env: TOKEN_ENV } },
      { host: FILES },
      ...(withWsRoute ? [{ host: WS }] : []),
    ];
    const bottle = {
      egress: {
        routes,
        extra_hosts: Object.fromEntries([API, FILES, WS].map((n) => [n, upstreamIp])),
        trust_ca: join(certs, "ca", "ca.crt"),
        network: net,
      },
    };
    // Beside the workspace, never in it: the agent may not write what the operator trusts.
    await writeFile(t.manifest, JSON.stringify(TestBottles.shellManifest([agent], bottle)));
  };

  /** Raw requests written in one go through a tunnel to `host`; the responses, then how it ended. */
  const raw = async (host: string, bytes: string, expect?: number): Promise<RawResponse[]> => {
    const b64 = Buffer.from(bytes, "latin1").toString("base64");
    const r = await t.sh(
      slug,
      `node raw-client.mjs http ${host} ${b64}${expect ? ` --expect ${expect}` : ""}`,
    );
    assert.equal(r.code, 0, r.stderr);
    return lines<RawResponse>(r.stdout);
  };

  /** A WebSocket opened from the agent, running `steps`; everything that came back. */
  const ws = async (url: string, steps: unknown[], header?: string): Promise<WsEvent[]> => {
    const b64 = Buffer.from(JSON.stringify(steps)).toString("base64");
    const r = await t.sh(
      slug,
      `node raw-client.mjs ws ${url} ${b64}${header ? ` --header "${header}"` : ""}`,
    );
    assert.equal(r.code, 0, r.stderr);
    return lines<WsEvent>(r.stdout);
  };

  const seen = async (): Promise<UpstreamEvent[]> => upstreamLog(upstream);
  const requestsUnder = async (prefix: string) =>
    (await seen()).filter((e) => e.event === "request" && e.url?.startsWith(prefix));

  /** The egress audit as `logs --egress --json` shows it. */
  const audit = async (): Promise<AuditRecord[]> => {
    const r = await t.cli(["logs", slug, "--egress", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return lines<AuditRecord>(r.stdout);
  };

  /** The audit once it holds a record that `done` accepts (records are written as flows end). */
  const auditUntil = async (done: (records: AuditRecord[]) => boolean) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const records = await audit();
      if (done(records) || Date.now() > deadline) return records;
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  before(async () => {
    await t.setup(TestBottles.shellManifest([agent]));
    const built = await t.cli(["images", "build", "shell", "bundle"], 20 * 60_000);
    assert.equal(built.code, 0, built.stderr);
    certs = join(t.dir, "certs");
    await upstreamCerts(certs, [API, FILES, WS]);
    net = await t.network([]);
    upstream = await t.fakeUpstream(certs, net);
    upstreamIp = await t.ip(upstream, net);
    await writeManifest(true);
    await copyFile(join(FIXTURES, "raw-client.mjs"), join(t.workspace, "raw-client.mjs"));
    t.env[TOKEN_ENV] = TOKEN;
    slug = await t.start(agent);
    placeholder = placeholderFor(TOKEN, TOKEN_ENV, slug);
  });
  after(() => (process.env["KEEP"] ? undefined : t.teardown()));

  const api = (extra: readonly string[] = []) => [
    `Host: ${API}`,
    `x-api-key: ${placeholder}`,
    ...extra,
  ];

  test("request smuggling in a decrypted tunnel is refused before a byte of it reaches the upstream", async () => {
    // The twin: a keep-alive GET, then a POST with a body, on one connection, both through.
    const twin = await raw(
      API,
      request("GET /v1/s/twin-get HTTP/1.1", api()) +
        request("POST /v1/s/twin-post HTTP/1.1", api(["Content-Length: 7"]), "hello=1"),
      2,
    );
    assert.deepEqual(
      twin.map((r) => r.status),
      [200, 200],
      JSON.stringify(twin),
    );
    const arrived = await requestsUnder("/v1/s/");
    assert.deepEqual(
      arrived.map((r) => [r.method, r.url, r.body, r.headers?.["x-api-key"]]),
      [
        ["GET", "/v1/s/twin-get", "", TOKEN],
        ["POST", "/v1/s/twin-post", "hello=1", TOKEN],
      ],
    );

    // The smuggled request: on a path the route allows, so only the framing stands in its way.
    const inner = request(
      "POST /v1/s/admin HTTP/1.1",
      api(["Content-Length: 2", "Connection: close"]),
      "hi",
    );
    const attacks: [string, string, string][] = [
      [
        "a Connection header that removes the Content-Length carrying a second request",
        request(
          "GET /v1/s/a HTTP/1.1",
          api(["Connection: content-length", `Content-Length: ${inner.length}`]),
          inner,
        ),
        "ambiguous-framing",
      ],
      [
        "a GET with a body",
        request("GET /v1/s/b HTTP/1.1", api(["Content-Length: 5"]), "hello"),
        "body-not-allowed",
      ],
      [
        "a body encoded as gzip, then chunked",
        request(
          "POST /v1/s/c HTTP/1.1",
          api(["Transfer-Encoding: gzip, chunked"]),
          "5\r\nhello\r\n0\r\n\r\n",
        ),
        "encoded-body",
      ],
      [
        "two Host headers",
        request("GET /v1/s/d HTTP/1.1", [...api(), `Host: ${FILES}`]),
        "ambiguous-framing",
      ],
    ];
    for (const [what, bytes, tag] of attacks) {
      const got = await raw(API, bytes);
      const [first, ...rest] = got;
      assert.equal(first?.status, 403, `${what}: ${JSON.stringify(got)}`);
      assert.equal(first.refusal, tag, what);
      // One answer, then the proxy closes: nothing after the refused head is read as a request.
      assert.deepEqual(rest, [{ event: "closed" }], `${what}: ${JSON.stringify(got)}`);
    }

    const records = await audit();
    for (const [path, tag] of [
      ["/v1/s/a", "ambiguous-framing"],
      ["/v1/s/b", "body-not-allowed"],
      ["/v1/s/c", "encoded-body"],
      ["/v1/s/d", "ambiguous-framing"],
    ])
      assert.ok(
        records.some((r) => r.decision === "refuse" && r.path === path && r.tag === tag),
        `audited: ${path} ${tag}`,
      );
    assert.ok(!records.some((r) => r.path.includes("admin")), "the smuggled request was never one");
    const after = await requestsUnder("/v1/s/");
    assert.deepEqual(
      after.map((r) => r.url),
      ["/v1/s/twin-get", "/v1/s/twin-post"],
      "none of the attacks, and no /admin, reached the upstream",
    );
  });

  test("a pipelined pair with a smuggled second request: the upstream gets exactly what the audit allowed, each with the real token", async () => {
    const smuggled = request("POST /v1/p/smuggled HTTP/1.1", api(["Content-Length: 2"]), "hi");
    const pair = await raw(
      API,
      request("GET /v1/p/first HTTP/1.1", api()) +
        request(
          "GET /v1/p/second HTTP/1.1",
          api(["Connection: content-length", `Content-Length: ${smuggled.length}`]),
          smuggled,
        ),
    );
    assert.deepEqual(
      pair.map((r) => [r.status ?? r.event, r.refusal]),
      [
        [200, ""],
        [403, "ambiguous-framing"],
        ["closed", undefined],
      ],
      JSON.stringify(pair),
    );

    const records = (
      await auditUntil((rs) => rs.some((r) => r.path === "/v1/p/first" && r.status === 200))
    ).filter((r) => r.path.startsWith("/v1/p/"));
    const allowed = records.filter((r) => r.decision === "allow").map((r) => r.path);
    const refused = records.filter((r) => r.decision === "refuse").map((r) => r.path);
    assert.deepEqual(allowed, ["/v1/p/first"]);
    assert.deepEqual(refused, ["/v1/p/second"]);

    const arrived = await requestsUnder("/v1/p/");
    assert.deepEqual(
      arrived.map((r) => r.url),
      allowed,
      "the upstream saw exactly the requests the audit allowed",
    );
    for (const r of arrived) assert.equal(r.headers?.["x-api-key"], TOKEN, r.url);

    // Content-Length and chunked on one request (the CL.TE classic), behind an allowed one that
    // is still in flight: the parser refuses the pair's second head outright.
    const clte = await raw(
      API,
      request("GET /v1/p/first-again HTTP/1.1", api()) +
        request(
          "POST /v1/p/clte HTTP/1.1",
          api(["Content-Length: 6", "Transfer-Encoding: chunked"]),
          "0\r\n\r\n" + request("GET /v1/p/smuggled-te HTTP/1.1", api()),
        ),
    );
    assert.ok(
      clte.some((r) => r.status === 400 && r.refusal === "ambiguous-framing"),
      JSON.stringify(clte),
    );
    assert.deepEqual(clte.at(-1), { event: "closed" });

    const upstreamSaw = (await requestsUnder("/v1/p/")).map((r) => r.url ?? "");
    const allowedIn = (records: AuditRecord[]) =>
      records.filter((r) => r.decision === "allow").map((r) => r.path);
    const all = (
      await auditUntil((rs) => upstreamSaw.every((url) => allowedIn(rs).includes(url)))
    ).filter((r) => r.path.startsWith("/v1/p/"));
    const auditAllowed = allowedIn(all);
    for (const url of upstreamSaw)
      assert.ok(
        auditAllowed.includes(url),
        `${url} reached the upstream and is audited as allowed`,
      );
    for (const r of all.filter((r) => r.tag === "allowed"))
      assert.ok(upstreamSaw.includes(r.path), `${r.path} is audited as answered and arrived`);
    for (const r of all.filter((r) => r.decision === "refuse"))
      assert.ok(!upstreamSaw.includes(r.path), `${r.path} was refused and did not arrive`);
    for (const r of await requestsUnder("/v1/p/"))
      assert.equal(r.headers?.["x-api-key"], TOKEN, `${r.url} carries the injected token`);
    assert.ok(!(await seen()).some((e) => e.url?.includes("smuggled")), "no smuggled request");
  });

  test("nothing pipelined behind a refused request reaches the upstream", async () => {
    const got = await raw(
      API,
      request("GET /v1-not-a-route/q HTTP/1.1", api()) +
        request("POST /v1/q/after HTTP/1.1", api(["Content-Length: 2"]), "hi"),
    );
    assert.deepEqual(
      got.map((r) => r.refusal ?? r.event),
      ["path-not-allowed", "closed"],
    );
    const upgrade = await raw(
      API,
      request("GET /v1-not-a-route/q HTTP/1.1", api()) +
        request(
          "GET /v1/q/ws HTTP/1.1",
          api([
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
          ]),
        ),
    );
    assert.deepEqual(
      upgrade.map((r) => r.refusal ?? r.event),
      ["path-not-allowed", "closed"],
    );
    await new Promise((r) => setTimeout(r, 1000));
    const arrived = (await seen()).filter((e) => e.url?.startsWith("/v1/q/"));
    assert.deepEqual(
      arrived.map((e) => `${e.event} ${e.url}`),
      [],
      "nothing behind the refusal arrived",
    );
  });

  test("a WebSocket carries messages both ways, and the upstream's echo of the real token comes back as the placeholder", async () => {
    const events = await ws(
      `wss://${API}/v1/ws/echo`,
      [{ send: "hello" }, { send: "token?" }, { close: 1000 }],
      `x-api-key: ${placeholder}`,
    );
    assert.deepEqual(events, [
      { event: "open" },
      { event: "message", text: "hello" },
      { event: "message", text: placeholder },
      { event: "close", code: 1000, reason: "" },
    ]);
    assert.notEqual(placeholder, TOKEN);

    const log = (await seen()).filter((e) => e.url === "/v1/ws/echo");
    const upgrade = log.find((e) => e.event === "upgrade");
    assert.equal(upgrade?.headers?.["x-api-key"], TOKEN, "the upstream got the real token");
    assert.equal(upgrade.headers["sec-websocket-extensions"], undefined, "no compression");
    assert.deepEqual(
      log.filter((e) => e.event === "ws-message").map((e) => e.text),
      ["hello", "token?"],
    );
    const records = await auditUntil((rs) =>
      rs.some((r) => r.kind === "websocket" && r.path === "/v1/ws/echo"),
    );
    assert.ok(
      records.some(
        (r) => r.kind === "websocket" && r.path === "/v1/ws/echo" && r.decision === "allow",
      ),
    );
  });

  test("a held secret split across two WebSocket fragments closes the connection with 1008, and none of it reaches the upstream", async () => {
    const [head, tail] = [TOKEN.slice(0, 24), TOKEN.slice(24)];
    const events = await ws(
      `wss://${API}/v1/ws/leak`,
      [{ send: "twin" }, { fragments: [`config: ${head}`, tail] }],
      `x-api-key: ${placeholder}`,
    );
    assert.deepEqual(events.slice(0, 2), [{ event: "open" }, { event: "message", text: "twin" }]);
    const closed = events[2];
    assert.equal(closed?.event, "close", JSON.stringify(events));
    assert.equal(closed.code, 1008);
    assert.match(closed.reason ?? "", /^bot-bottle: refused: /);
    assert.ok(!closed.reason?.includes(tail), "the close reason does not echo it");

    const log = (await seen()).filter((e) => e.url === "/v1/ws/leak");
    assert.deepEqual(
      log.filter((e) => e.event === "ws-message").map((e) => e.text),
      ["twin"],
      "only the twin message arrived",
    );
    for (const e of log.filter((e) => e.event.startsWith("ws-")))
      assert.ok(
        !JSON.stringify(e).includes(head.slice(13)) && !JSON.stringify(e).includes(tail),
        `no piece of the secret reached the upstream: ${JSON.stringify(e)}`,
      );
    assert.ok(
      log.some((e) => e.event === "ws-close" && e.code === 1008),
      "the proxy closed the upstream side too",
    );
    const records = await auditUntil((rs) =>
      rs.some((r) => r.kind === "websocket" && r.path === "/v1/ws/leak"),
    );
    assert.ok(
      records.some(
        (r) => r.kind === "websocket" && r.path === "/v1/ws/leak" && r.tag === "secret-detected",
      ),
    );
  });

  test("an upgrade to anything but WebSocket (h2c) is refused with upgrade-refused", async () => {
    const twin = await ws(`wss://${API}/v1/ws/h2c`, [{ close: 1000 }], `x-api-key: ${placeholder}`);
    assert.deepEqual(twin, [{ event: "open" }, { event: "close", code: 1000, reason: "" }]);

    const h2c = await raw(
      API,
      request(
        "GET /v1/ws/h2c HTTP/1.1",
        api([
          "Connection: Upgrade, HTTP2-Settings",
          "Upgrade: h2c",
          "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
        ]),
      ),
    );
    assert.equal(h2c[0]?.status, 403, JSON.stringify(h2c));
    assert.equal(h2c[0].refusal, "upgrade-refused");

    const log = (await seen()).filter((e) => e.url === "/v1/ws/h2c");
    assert.deepEqual(
      log
        .filter((e) => e.event === "upgrade" || e.event === "request")
        .map((e) => e.headers?.upgrade),
      ["websocket"],
      "only the WebSocket upgrade reached the upstream",
    );
  });

  test("the agent's own Authorization and Cookie never reach a credential route's upstream; a plain route gets them", async () => {
    const curl = (url: string, headers: string) =>
      t.sh(slug, `curl -sS -o /dev/null -w '%{http_code}' ${headers} ${url}`);
    const own = "-H 'Authorization: Bearer agent-own' -H 'Cookie: session=agent-own'";
    const plain = await curl(`https://${FILES}/creds`, own);
    assert.equal(plain.stdout, "200", plain.stderr);
    const credential = await curl(
      `https://${API}/v1/creds`,
      `${own} -H "x-api-key: $${TOKEN_ENV}" -H 'Proxy-Authorization: Basic YWdlbnQ6b3du'`,
    );
    assert.equal(credential.stdout, "200", credential.stderr);

    const log = await seen();
    const twin = log.find((e) => e.event === "request" && e.url === "/creds");
    assert.equal(twin?.headers?.["cookie"], "session=agent-own");
    assert.equal(twin.headers["authorization"], "Bearer agent-own");
    const got = log.find((e) => e.event === "request" && e.url === "/v1/creds");
    assert.equal(got?.headers?.["x-api-key"], TOKEN, "the injected credential arrived");
    for (const name of ["authorization", "cookie", "proxy-authorization"])
      assert.equal(got.headers[name], undefined, `the agent's ${name} did not`);
    assert.ok(!JSON.stringify(got).includes("agent-own"));
  });

  test("removing a route with egress apply closes an open WebSocket to it", async () => {
    const ready = join(t.workspace, "ws-ready");
    await rm(ready, { force: true });
    const held = ws(`wss://${WS}/live`, [{ send: "before" }, { hold: "ws-ready" }]);
    const deadline = Date.now() + 30_000;
    while (
      !(await readFile(ready).then(
        () => true,
        () => false,
      ))
    ) {
      assert.ok(Date.now() < deadline, "the WebSocket never opened");
      await new Promise((r) => setTimeout(r, 50));
    }

    await writeManifest(false);
    const applied = await t.cli(["egress", "apply", slug, "--yes"]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stderr, /routes generation 2 loaded \(removed ws\.example\.test\)/);
    const events = await held;
    assert.deepEqual(events.slice(0, 2), [{ event: "open" }, { event: "message", text: "before" }]);
    assert.deepEqual(
      events[2],
      { event: "close", code: 1008, reason: "bot-bottle: the route was removed" },
      "the proxy closed it, saying why",
    );

    const again = await ws(`wss://${WS}/live`, [{ send: "after" }]);
    assert.deepEqual(again, [{ event: "connect-refused", status: 403, refusal: "not-in-routes" }]);
    const log = (await seen()).filter((e) => e.url === "/live");
    assert.deepEqual(
      log.filter((e) => e.event === "ws-message").map((e) => e.text),
      ["before"],
    );
    assert.ok(
      log.some(
        (e) =>
          e.event === "ws-close" &&
          e.code === 1008 &&
          e.reason === "bot-bottle: the route was removed",
      ),
      "the upstream side was closed too",
    );
  });
});

function lines<T>(text: string): T[] {
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

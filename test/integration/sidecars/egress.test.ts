import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest, createServer as createHttpServer, type Server } from "node:http";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import type { AuditRecord, EgressConfig, RouteRule } from "../../../src/shared/egress-config.js";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { EgressProxy } from "../../../src/sidecars/egress/proxy.js";
import {
  connectTunnel,
  FakeUpstream,
  makeCa,
  readFrame,
  requestOver,
  socketAgent,
  tlsOver,
  viaProxy,
  wsFrame,
  type Ca,
} from "../../helpers/egress.js";

const SLUG = "probe-abc123";
const TOKEN = "sk-ant-api03-" + "Q7xLmP2vR9sT4uW6yZ8aB1cD3eF5gH0jK2lM4nO6pQ8rS0tU";
const OTHER_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";
const PLACEHOLDER = placeholderFor(TOKEN, "ANTHROPIC_API_KEY", SLUG);
const OTHER_PLACEHOLDER = placeholderFor(OTHER_TOKEN, "GH_TOKEN", SLUG);

describe("the egress proxy, in process against a fake HTTPS upstream", () => {
  let dir: string;
  let bottleCa: Ca;
  let upstreamCa: Ca;
  let upstream: FakeUpstream;
  let plain: Server;
  let plainPort: number;
  let proxy: EgressProxy;
  let port: number;
  let audit: AuditRecord[];
  let api: string;

  const routes = (): RouteRule[] => [
    {
      host: "api.example.test",
      port: upstream.port,
      tlsPassthrough: false,
      allowIpLiteral: false,
      auth: { header: "x-api-key", tokenEnv: "ANTHROPIC_API_KEY" },
    },
    {
      host: "git.example.test",
      port: upstream.port,
      tlsPassthrough: false,
      allowIpLiteral: false,
      auth: { header: "authorization", scheme: "token", tokenEnv: "GH_TOKEN" },
    },
    {
      host: "*.files.example.test",
      port: upstream.port,
      paths: ["/pub/"],
      methods: ["GET", "HEAD"],
      tlsPassthrough: false,
      allowIpLiteral: false,
    },
    {
      host: "pinned.example.test",
      port: upstream.port,
      tlsPassthrough: true,
      allowIpLiteral: false,
    },
    { host: "127.0.0.1", port: upstream.port, tlsPassthrough: false, allowIpLiteral: true },
    { host: "plain.example.test", port: plainPort, tlsPassthrough: false, allowIpLiteral: false },
    {
      host: "sneaky.example.test",
      port: upstream.port,
      tlsPassthrough: false,
      allowIpLiteral: false,
    },
  ];

  const config = (extra: Partial<EgressConfig> = {}): EgressConfig => ({
    slug: SLUG,
    generation: 1,
    secretEnv: ["ANTHROPIC_API_KEY", "GH_TOKEN"],
    routes: routes(),
    extraHosts: Object.fromEntries(
      ["api", "git", "a.files", "pinned", "plain", "new"].map((h) => [
        `${h}.example.test`,
        "127.0.0.1",
      ]),
    ),
    ...extra,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-egress-"));
    [bottleCa, upstreamCa] = await Promise.all([makeCa(dir, "bottle"), makeCa(dir, "upstream")]);
    upstream = new FakeUpstream(upstreamCa);
    await upstream.start();
    plain = createHttpServer((req, res) => res.end(`plain ${req.method} ${req.url}`));
    await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
    plainPort = (plain.address() as { port: number }).port;
    audit = [];
    proxy = new EgressProxy({
      config: config(),
      trustCa: upstreamCa.cert,
      ca: bottleCa.authority,
      secrets: { ANTHROPIC_API_KEY: TOKEN, GH_TOKEN: OTHER_TOKEN, BOT_BOTTLE_CA_KEY: bottleCa.key },
      audit: (r) => audit.push(r),
      log: () => undefined,
      // The only name the test resolves through "DNS": one that lands on a private address.
      lookup: (host) =>
        host === "sneaky.example.test"
          ? Promise.resolve([{ address: "10.1.2.3", family: 4 }])
          : Promise.reject(Object.assign(new Error("not found"), { code: "ENOTFOUND" })),
    });
    port = await proxy.listen(0, "127.0.0.1");
    api = `api.example.test:${upstream.port}`;
  });

  beforeEach(() => {
    upstream.received.length = 0;
    audit.length = 0;
  });

  after(async () => {
    await proxy.close();
    await upstream.close();
    plain.closeAllConnections();
    plain.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("sets the real token for a declared route; the agent only ever holds the placeholder", async () => {
    assert.equal(PLACEHOLDER.length, TOKEN.length);
    assert.ok(PLACEHOLDER.startsWith("sk-ant-api03-") && PLACEHOLDER !== TOKEN);
    const res = await viaProxy(port, api, bottleCa.cert, {
      method: "POST",
      path: "/v1/messages",
      headers: { "x-api-key": PLACEHOLDER, "content-type": "application/json" },
      body: JSON.stringify({ model: "m", note: `my key is ${PLACEHOLDER}` }),
    });
    assert.equal(res.status, 200, res.body);
    const seen = upstream.received[0];
    assert.equal(seen?.headers["x-api-key"], TOKEN, "the upstream gets the real token");
    // The upstream echoes every header back: the agent must see its placeholder, never the token.
    assert.ok(!res.body.includes(TOKEN) && res.body.includes(PLACEHOLDER), "echoed body redacted");
    assert.equal(res.headers["x-echo-auth"], PLACEHOLDER, "echoed header redacted");
    const line = audit.find((a) => a.kind === "https");
    assert.equal(line?.decision, "allow");
    assert.equal(line?.route, "api.example.test");
    assert.ok(!JSON.stringify(audit).includes(TOKEN));
  });

  test("refuses a host that no route names, next to one that is named", async () => {
    const allowed = await viaProxy(port, api, bottleCa.cert, { path: "/ok" });
    assert.equal(allowed.status, 200);
    const refused = await connectTunnel(port, "evil.example.test:443");
    assert.ok("status" in refused);
    assert.equal(refused.status, 403);
    assert.equal(refused.headers["x-bot-bottle-refusal"], "not-in-routes");
    assert.match(
      refused.body,
      /bot-bottle: host "evil\.example\.test" is not in this bottle's routes — ask the operator to add it/,
    );
    // Clients drop a refused CONNECT's body: the reason is in a header too, in ASCII.
    assert.equal(
      refused.headers["x-bot-bottle-reason"],
      'bot-bottle: host "evil.example.test" is not in this bottle\'s routes - ask the operator to add it',
    );
    const line = audit.find((a) => a.tag === "not-in-routes");
    assert.equal(line?.decision, "refuse");
    assert.equal(line?.host, "evil.example.test");
  });

  test("normalises the host: case, a trailing dot and IDNA all name the same route", async () => {
    const res = await viaProxy(
      port,
      `API.Example.Test.:${upstream.port}`,
      bottleCa.cert,
      { path: "/x", host: api },
      "api.example.test",
    );
    assert.equal(res.status, 200, res.body);
    // Clients send IDNA names in their ASCII form; the route's spelling and the refusal use it too.
    const idn = await connectTunnel(port, `xn--bcher-kva.example.test:443`);
    assert.ok("status" in idn && idn.status === 403, "an IDNA name no route names");
    assert.match(idn.body, /host "xn--bcher-kva\.example\.test" is not in this bottle's routes/);
    // Raw UTF-8 in a request line is not HTTP/1.1: refused as such, never matched loosely.
    const raw = await connectTunnel(port, `bücher.example.test:443`);
    assert.ok("status" in raw && raw.status === 400);
  });

  test("refuses IP literals unless a route allows that literal", async () => {
    const allowed = await viaProxy(
      port,
      `127.0.0.1:${upstream.port}`,
      bottleCa.cert,
      { path: "/ip" },
      "127.0.0.1",
    );
    assert.equal(allowed.status, 200, allowed.body);
    for (const literal of [
      `10.0.0.1:${upstream.port}`,
      "[::1]:443",
      `0x7f.0.0.2:${upstream.port}`,
    ]) {
      const refused = await connectTunnel(port, literal);
      assert.ok("status" in refused, literal);
      assert.equal(refused.headers["x-bot-bottle-refusal"], "ip-literal", literal);
    }
  });

  test("refuses a name that resolves to a private address unless extra_hosts maps it", async () => {
    // api.example.test -> 127.0.0.1 through extra_hosts: allowed (the test above).
    const res = await viaProxy(port, `sneaky.example.test:${upstream.port}`, bottleCa.cert, {
      path: "/",
    });
    assert.equal(res.status, 403);
    assert.equal(res.headers["x-bot-bottle-refusal"], "private-address");
    assert.equal(upstream.received.length, 0);
  });

  test("refuses CONNECT to a port the route does not name", async () => {
    const refused = await connectTunnel(port, "api.example.test:22");
    assert.ok("status" in refused);
    assert.equal(refused.headers["x-bot-bottle-refusal"], "port-not-allowed");
  });

  test("refuses a TLS server name or a Host header that differs from the CONNECT target", async () => {
    const tunnel = await connectTunnel(port, api);
    assert.ok("socket" in tunnel);
    await assert.rejects(tlsOver(tunnel.socket, "git.example.test", bottleCa.cert));
    assert.ok(audit.some((a) => a.tag === "sni-mismatch"));
    const res = await viaProxy(port, api, bottleCa.cert, {
      path: "/",
      host: `git.example.test:${upstream.port}`,
    });
    assert.equal(res.status, 403);
    assert.equal(res.headers["x-bot-bottle-refusal"], "host-mismatch");
    assert.equal(upstream.received.length, 0);
  });

  test("refuses requests with ambiguous framing", async () => {
    const tunnel = await connectTunnel(port, api);
    assert.ok("socket" in tunnel);
    const send = async (head: string): Promise<string> => {
      const t = await connectTunnel(port, api);
      assert.ok("socket" in t);
      const tls = await tlsOver(t.socket, "api.example.test", bottleCa.cert);
      return new Promise((resolve) => {
        let out = "";
        tls.on("data", (d: Buffer) => (out += d.toString()));
        tls.on("close", () => resolve(out));
        tls.on("error", () => resolve(out));
        tls.write(head);
      });
    };
    tunnel.socket.destroy();
    const ok = await send(
      `POST /a HTTP/1.1\r\nHost: ${api}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`,
    );
    assert.match(ok, /^HTTP\/1\.1 200/);
    const both = await send(
      `POST /a HTTP/1.1\r\nHost: ${api}\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n`,
    );
    assert.match(both, /^HTTP\/1\.1 400[^]*x-bot-bottle-refusal: ambiguous-framing/i);
    const twice = await send(
      `POST /a HTTP/1.1\r\nHost: ${api}\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi`,
    );
    assert.match(twice, /^HTTP\/1\.1 400[^]*x-bot-bottle-refusal: ambiguous-framing/i);
    assert.equal(upstream.received.length, 1, "only the well-framed request reached the upstream");
  });

  test("allows only a route's paths and methods", async () => {
    const host = `a.files.example.test:${upstream.port}`;
    assert.equal((await viaProxy(port, host, bottleCa.cert, { path: "/pub/x.tar" })).status, 200);
    const path = await viaProxy(port, host, bottleCa.cert, { path: "/private/x" });
    assert.equal(path.headers["x-bot-bottle-refusal"], "path-not-allowed");
    const dots = await viaProxy(port, host, bottleCa.cert, { path: "/pub/../private/x" });
    assert.equal(dots.status, 403);
    const method = await viaProxy(port, host, bottleCa.cert, {
      method: "POST",
      path: "/pub/x",
      body: "x",
    });
    assert.equal(method.headers["x-bot-bottle-refusal"], "method-not-allowed");
    assert.equal(upstream.received.length, 1);
  });

  test("refuses a placeholder sent to any host other than its route's", async () => {
    const own = await viaProxy(port, `git.example.test:${upstream.port}`, bottleCa.cert, {
      headers: { authorization: `token ${OTHER_PLACEHOLDER}` },
    });
    assert.equal(own.status, 200);
    assert.equal(upstream.received[0]?.headers.authorization, `token ${OTHER_TOKEN}`);
    const stolen = await viaProxy(port, api, bottleCa.cert, {
      method: "POST",
      path: "/v1/messages",
      body: JSON.stringify({ text: OTHER_PLACEHOLDER }),
    });
    assert.equal(stolen.status, 403);
    assert.equal(stolen.headers["x-bot-bottle-refusal"], "placeholder-wrong-host");
  });

  test("refuses a secret in the query string, a header, a JSON body and a base64 body", async () => {
    const clean = await viaProxy(port, api, bottleCa.cert, {
      method: "POST",
      path: "/v1/m?q=hello",
      body: '{"a":"hello"}',
    });
    assert.equal(clean.status, 200);
    upstream.received.length = 0;
    const cases = [
      { path: `/v1/m?key=${encodeURIComponent(TOKEN)}` },
      { path: "/v1/m", headers: { "x-debug": OTHER_TOKEN } },
      { method: "POST", path: "/v1/m", body: JSON.stringify({ note: `key ${OTHER_TOKEN}` }) },
      {
        method: "POST",
        path: "/v1/m",
        body: Buffer.from(`prefix-${TOKEN}-suffix`).toString("base64"),
      },
      { method: "POST", path: "/v1/m", body: `x=${Buffer.from(bottleCa.key).toString("hex")}` },
      { method: "POST", path: "/v1/m", body: "AKIAIOSFODNN7EXAMPLE is an access key" },
    ];
    for (const call of cases) {
      const res = await viaProxy(port, api, bottleCa.cert, call);
      assert.equal(res.status, 403, JSON.stringify(call).slice(0, 80));
      assert.equal(res.headers["x-bot-bottle-refusal"], "secret-detected");
      assert.ok(!res.body.includes(TOKEN) && !res.body.includes(OTHER_TOKEN));
    }
    const complete = upstream.received.filter((r) => r.complete);
    assert.equal(complete.length, 0, "no request with a secret reached the upstream whole");
    for (const r of upstream.received)
      assert.ok(!r.body.includes(OTHER_TOKEN) && !r.url.includes("sk-ant"));
  });

  test("scans a large body as it streams: a secret near the end never leaves", async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 0x62);
    const ok = await viaProxy(port, api, bottleCa.cert, { method: "PUT", path: "/up", body: big });
    assert.equal(ok.status, 200);
    assert.equal(upstream.received[0]?.body.length, big.length);
    upstream.received.length = 0;
    const planted = Buffer.concat([big, Buffer.from(OTHER_TOKEN), Buffer.alloc(100, 0x62)]);
    const res = await viaProxy(port, api, bottleCa.cert, {
      method: "PUT",
      path: "/up",
      body: planted,
    });
    assert.equal(res.status, 403);
    assert.equal(res.headers["x-bot-bottle-refusal"], "secret-detected");
    await new Promise((r) => setTimeout(r, 100));
    for (const r of upstream.received) {
      assert.equal(r.complete, false);
      assert.ok(
        !r.body.includes(Buffer.from(OTHER_TOKEN.slice(0, 8))),
        "no part of the token left",
      );
    }
  });

  test("tunnels a passthrough route without decrypting it, and checks its server name", async () => {
    const authority = `pinned.example.test:${upstream.port}`;
    const tunnel = await connectTunnel(port, authority);
    assert.ok("socket" in tunnel);
    // The agent talks TLS with the upstream itself: its certificate comes from the upstream's CA.
    const tls = await tlsOver(tunnel.socket, "pinned.example.test", upstreamCa.cert);
    const res = await requestOver(socketAgent(tls), authority, { path: "/pinned" });
    assert.equal(res.status, 200);
    tls.destroy();
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(audit.some((a) => a.kind === "tunnel" && a.decision === "allow"));
    const wrong = await connectTunnel(port, authority);
    assert.ok("socket" in wrong);
    await assert.rejects(tlsOver(wrong.socket, "api.example.test", upstreamCa.cert));
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(audit.some((a) => a.kind === "tunnel" && a.tag === "sni-mismatch"));
  });

  test("carries a WebSocket upgrade through the tunnel", async () => {
    const tunnel = await connectTunnel(port, api);
    assert.ok("socket" in tunnel);
    const tls = await tlsOver(tunnel.socket, "api.example.test", bottleCa.cert);
    const reply = await new Promise<string>((resolve) => {
      let out = Buffer.alloc(0);
      tls.on("data", (d: Buffer) => {
        const first = out.length === 0;
        out = Buffer.concat([out, d]);
        const end = out.indexOf("\r\n\r\n");
        if (first) tls.write(wsFrame("ping", { mask: true }));
        if (end < 0) return;
        // The message may come in fragments: gather them up to the final one.
        let rest = out.subarray(end + 4);
        let message = "";
        for (let f = readFrame(rest); f; f = readFrame(rest)) {
          rest = rest.subarray(f.size);
          message += f.payload.toString();
          if (f.fin) return resolve(out.subarray(0, end).toString() + "\n" + message);
        }
      });
      tls.write(
        `GET /ws HTTP/1.1\r\nHost: ${api}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nx-api-key: ${PLACEHOLDER}\r\n\r\n`,
      );
    });
    tls.destroy();
    assert.match(reply, /^HTTP\/1\.1 101/);
    assert.match(reply, /\necho:ping$/);
    assert.equal(upstream.received.find((r) => r.url === "/ws")?.headers["x-api-key"], TOKEN);
  });

  test("forwards absolute-form http:// requests, but never sends a credential in clear", async () => {
    const get = (url: string) =>
      new Promise<{ status: number; body: string; tag: string | undefined }>((resolve, reject) => {
        const req = httpRequest(
          { host: "127.0.0.1", port, path: url, headers: { host: new URL(url).host } },
          (res) => {
            let body = "";
            res.on("data", (d: Buffer) => (body += d.toString()));
            res.on("end", () =>
              resolve({
                status: res.statusCode ?? 0,
                body,
                tag: res.headers["x-bot-bottle-refusal"] as string | undefined,
              }),
            );
          },
        );
        req.on("error", reject);
        req.end();
      });
    const ok = await get(`http://plain.example.test:${plainPort}/hello?x=1`);
    assert.deepEqual([ok.status, ok.body], [200, "plain GET /hello?x=1"]);
    assert.equal(audit.find((a) => a.kind === "http")?.path, "/hello?x=");
    const clear = await get(`http://api.example.test:${upstream.port}/v1/m`);
    assert.equal(clear.tag, "credential-needs-tls");
    const unknown = await get("http://evil.example.test/");
    assert.equal(unknown.tag, "not-in-routes");
  });

  test("reloads routes without dropping a connection held open across the reload", async () => {
    const newHost = `new.example.test:${upstream.port}`;
    const before = await connectTunnel(port, newHost);
    assert.ok("status" in before && before.status === 403);
    const tunnel = await connectTunnel(port, api);
    assert.ok("socket" in tunnel);
    const tls = await tlsOver(tunnel.socket, "api.example.test", bottleCa.cert);
    const agent = socketAgent(tls);
    assert.equal((await requestOver(agent, api, { path: "/one" })).status, 200);
    proxy.reload(
      config({
        generation: 2,
        routes: [
          ...routes(),
          {
            host: "new.example.test",
            port: upstream.port,
            tlsPassthrough: false,
            allowIpLiteral: false,
          },
        ],
      }),
      upstreamCa.cert,
    );
    assert.equal(
      (await requestOver(agent, api, { path: "/two" })).status,
      200,
      "same connection, after the reload",
    );
    assert.ok(!tls.destroyed);
    const added = await viaProxy(port, newHost, bottleCa.cert, { path: "/new" });
    assert.equal(added.status, 200);
    tls.destroy();
  });

  test("a granted route's lease: allowed until it ends, then refused, on a held connection too", async () => {
    const leased = `new.example.test:${upstream.port}`;
    const expires = new Date(Date.now() + 1500).toISOString();
    proxy.reload(
      config({
        generation: 4,
        routes: [
          ...routes(),
          {
            host: "new.example.test",
            port: upstream.port,
            tlsPassthrough: false,
            allowIpLiteral: false,
            grant: "r-0123456789",
            expires,
          },
        ],
      }),
      upstreamCa.cert,
    );
    assert.equal((await viaProxy(port, leased, bottleCa.cert, { path: "/in-lease" })).status, 200);
    // A connection held open across the lease's end: its next request is decided afresh.
    const tunnel = await connectTunnel(port, leased);
    assert.ok("socket" in tunnel, "a tunnel opens while the lease holds");
    const tls = await tlsOver(tunnel.socket, "new.example.test", bottleCa.cert);
    const agent = socketAgent(tls);
    assert.equal((await requestOver(agent, leased, { path: "/held" })).status, 200);
    await new Promise((r) => setTimeout(r, Date.parse(expires) - Date.now() + 100));
    assert.equal((await requestOver(agent, leased, { path: "/held-after" })).status, 403);
    tls.destroy();
    const after = await viaProxy(port, leased, bottleCa.cert, { path: "/after-lease" });
    assert.equal(after.status, 403);
    assert.ok(audit.some((r) => r.tag === "not-in-routes" && r.host === "new.example.test"));
    // The declared routes are untouched by the lease's end.
    assert.equal((await viaProxy(port, api, bottleCa.cert, { path: "/v1/still" })).status, 200);
    proxy.reload(config({ generation: 5 }), upstreamCa.cert);
  });

  test("a rule that throws refuses (fail closed) and the next good reload recovers", async () => {
    assert.equal((await viaProxy(port, api, bottleCa.cert, { path: "/v1/ok" })).status, 200);
    // A corrupt route (paths not a list) makes the path rule throw.
    const broken = routes().map((r) =>
      r.host === "api.example.test" ? ({ ...r, paths: "/v1/" } as unknown as RouteRule) : r,
    );
    proxy.reload(config({ generation: 3, routes: broken }), upstreamCa.cert);
    const res = await viaProxy(port, api, bottleCa.cert, { path: "/v1/ok" });
    assert.equal(res.status, 403);
    assert.equal(res.headers["x-bot-bottle-refusal"], "rule-error");
    proxy.reload(config(), upstreamCa.cert);
    assert.equal((await viaProxy(port, api, bottleCa.cert, { path: "/v1/ok" })).status, 200);
  });

  test("a refusal is recorded with its reason, and the audit never holds query values", async () => {
    await viaProxy(port, api, bottleCa.cert, {
      path: `/v1/m?token=${encodeURIComponent(TOKEN)}&page=2`,
    });
    const line = audit.find((a) => a.kind === "https");
    assert.equal(line?.path, "/v1/m?token=&page=");
    assert.equal(line?.tag, "secret-detected");
    assert.match(line?.reason ?? "", /ANTHROPIC_API_KEY/);
    assert.ok(!JSON.stringify(audit).includes(TOKEN.slice(13)));
  });

  test("a plain TCP client that is not a proxy request is refused", async () => {
    const reply = await new Promise<string>((resolve) => {
      const s = netConnect(port, "127.0.0.1", () =>
        s.write("GET / HTTP/1.1\r\nHost: egress\r\nConnection: close\r\n\r\n"),
      );
      let out = "";
      s.on("data", (d: Buffer) => (out += d.toString()));
      s.on("close", () => resolve(out));
    });
    assert.match(reply, /x-bot-bottle-refusal: not-a-proxy-request/i);
    void tlsConnect;
  });
});

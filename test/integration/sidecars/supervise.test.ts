import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, mock, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startSupervise, type SuperviseServer } from "../../../src/sidecars/supervise/server.js";
import {
  parseSuperviseRecord,
  SUPERVISE_AUDIT_FILE,
  type Decision,
  type SuperviseConfig,
  type SuperviseRecord,
} from "../../../src/shared/supervise.js";

const SLUG = "dev-sv1test";

const BASE: SuperviseConfig = {
  slug: SLUG,
  port: 0,
  waitSeconds: 0,
  timeoutSeconds: 60,
  ratePerMinute: 100,
  reservedHosts: [
    "egress",
    "git-gate",
    "supervise",
    "bundle",
    "localhost",
    "host.docker.internal",
    "gateway.docker.internal",
  ],
  routes: ["api.github.com", "*.googleapis.com"],
  gitUpstreams: ["git@github.com:acme/app.git"],
};

interface Harness {
  server: SuperviseServer;
  dir: string;
  decisions: string;
  audit: string;
  client: Client;
  transport: StreamableHTTPClientTransport;
  logs: { event: string; message: string }[];
  /** Calls a tool; its one line of text, and whether the result is marked an error. */
  call(name: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean }>;
  records(): Promise<SuperviseRecord[]>;
  /** Writes a decision as the host does: whole, then renamed into place. */
  decide(decision: Partial<Decision> & { id: string }): Promise<void>;
  /** The id of the first request record that matches, once it is in the audit log. */
  requestId(match: (r: Extract<SuperviseRecord, { event: "request" }>) => boolean): Promise<string>;
  stop(): Promise<void>;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 5_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function connect(url: string) {
  const client = new Client({ name: "supervise-test", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

async function start(
  config: Partial<SuperviseConfig> = {},
  dir?: string,
  pollMs?: number,
): Promise<Harness> {
  const root = dir ?? (await mkdtemp(join(tmpdir(), "bot-bottle-supervise-")));
  const decisions = join(root, "decisions");
  const audit = join(root, "audit");
  await mkdir(decisions, { recursive: true });
  const logs: { event: string; message: string }[] = [];
  const server = await startSupervise({
    config: { ...BASE, ...config },
    decisionsDir: decisions,
    auditDir: audit,
    host: "127.0.0.1",
    port: 0,
    log: (event, message) => logs.push({ event, message }),
    ...(pollMs !== undefined ? { pollMs } : {}),
  });
  const { client, transport } = await connect(server.url);
  const records = async () => {
    const text = await readFile(join(audit, SUPERVISE_AUDIT_FILE), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => parseSuperviseRecord(l, SUPERVISE_AUDIT_FILE));
  };
  return {
    server,
    dir: root,
    decisions,
    audit,
    client,
    transport,
    logs,
    records,
    async call(name, args) {
      const result = await client.callTool({ name, arguments: args });
      const content = result.content as { type: string; text: string }[];
      assert.equal(content.length, 1);
      assert.equal(content[0]?.type, "text");
      return { text: content[0]?.text ?? "", isError: result.isError === true };
    },
    async decide(d) {
      const decision: Decision = {
        slug: SLUG,
        time: new Date().toISOString(),
        decision: "approve",
        ...d,
      };
      const tmp = join(decisions, `.${d.id}.${Math.random()}.tmp`);
      await writeFile(tmp, JSON.stringify(decision));
      await rename(tmp, join(decisions, `${d.id}.json`));
    },
    requestId: (match) =>
      until("the request in the audit log", async () => {
        const found = (await records()).find(
          (r): r is Extract<SuperviseRecord, { event: "request" }> =>
            r.event === "request" && match(r),
        );
        return found?.id;
      }),
    async stop() {
      await transport.terminateSession();
      await client.close();
      await server.close();
    },
  };
}

const ID = /r-[a-z0-9]{10}/;
const reason = "the build needs it";

function pendingId(text: string): string {
  const m =
    /^pending: request (r-[a-z0-9]{10}) waits for the operator; call request_status with id (r-[a-z0-9]{10}) later$/.exec(
      text,
    );
  assert.ok(m, `a pending result: ${text}`);
  assert.equal(m[1], m[2]);
  return m[1] as string;
}

describe("the supervise MCP server", () => {
  const harnesses: Harness[] = [];
  const open = async (config: Partial<SuperviseConfig> = {}, dir?: string) => {
    const h = await start(config, dir);
    harnesses.push(h);
    return h;
  };
  after(async () => {
    for (const h of harnesses.splice(0)) {
      await h.stop().catch(() => undefined);
      await rm(h.dir, { recursive: true, force: true });
    }
  });

  describe("tools", () => {
    let h: Harness;
    before(async () => {
      h = await open();
    });

    test("lists four tools, each with a one-line description and a strict JSON Schema", async () => {
      const { tools } = await h.client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), [
        "ask_operator",
        "request_egress_route",
        "request_git_repo",
        "request_status",
      ]);
      const byName = new Map(tools.map((t) => [t.name, t]));
      for (const tool of tools) {
        assert.ok(tool.description && !tool.description.includes("\n"), tool.name);
        assert.equal(tool.inputSchema.type, "object");
        assert.equal(tool.inputSchema["additionalProperties"], false, tool.name);
      }
      const props = (name: string) => Object.keys(byName.get(name)?.inputSchema.properties ?? {});
      assert.deepEqual(props("request_egress_route"), [
        "host",
        "paths",
        "methods",
        "port",
        "reason",
      ]);
      assert.deepEqual(byName.get("request_egress_route")?.inputSchema.required, [
        "host",
        "reason",
      ]);
      assert.deepEqual(props("request_git_repo"), ["upstream", "reason"]);
      assert.deepEqual(props("ask_operator"), ["question"]);
      assert.deepEqual(props("request_status"), ["id"]);
      const methods = byName.get("request_egress_route")?.inputSchema.properties?.["methods"] as {
        items: { enum: string[] };
      };
      assert.deepEqual(methods.items.enum, [
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
      ]);
      // Nothing a credential could ride in.
      for (const tool of tools)
        for (const name of Object.keys(tool.inputSchema.properties ?? {}))
          assert.doesNotMatch(name, /auth|token|header|secret|key|cookie/i, `${tool.name}.${name}`);
    });

    // Each refusal comes after the allowed twin that proves requests reach the queue at all.
    const cases: [twin: Record<string, unknown>, refused: Record<string, unknown>, why: RegExp][] =
      [
        [{ host: "*.example.com" }, { host: "*.com" }, /wildcard over a public suffix \(com\)/],
        [
          { host: "*.example.co.uk" },
          { host: "*.co.uk" },
          /wildcard over a public suffix \(co\.uk\)/,
        ],
        [{ host: "ten.example.com" }, { host: "10.0.0.1" }, /host is an IP address/],
        [{ host: "six.example.com" }, { host: "[::1]" }, /host is an IP address/],
        [{ host: "metadata.example.com" }, { host: "169.254.169.254" }, /host is an IP address/],
        [
          { host: "metadata.example.net" },
          { host: "metadata.google.internal" },
          /local or internal name \(\.internal\)/,
        ],
        [
          { host: "local.example.com" },
          { host: "localhost" },
          /local or internal name \(\.localhost\)/,
        ],
        [
          { host: "foo.example.com" },
          { host: "foo.localhost" },
          /local or internal name \(\.localhost\)/,
        ],
        [{ host: "docker.example.com" }, { host: "host.docker.internal" }, /\(\.internal\)/],
        [{ host: "egress.example.com" }, { host: "egress" }, /bundle's own names/],
        [{ host: "supervise.example.com" }, { host: "supervise" }, /bundle's own names/],
        [{ host: "api.gitlab.com" }, { host: "api.github.com" }, /^already allowed/],
        [
          { host: "paths.example.com", paths: ["/v1/"] },
          { host: "paths.example.com", paths: ["/v1/../admin"] },
          /paths\[0\] must not contain "\." or "\.\." segments/,
        ],
        [
          { host: "creds.example.com" },
          { host: "creds.example.com", headers: { authorization: "Bearer sk-123" } },
          /never carries a credential \(field headers\)/,
        ],
        [
          { host: "creds.example.com", methods: ["GET"] },
          { host: "creds.example.com", methods: ["GET"], token: "ghp_abc" },
          /never carries a credential \(field token\)/,
        ],
      ];
    for (const [twin, bad, why] of cases)
      test(`refuses ${JSON.stringify(bad)}, after allowing ${JSON.stringify(twin)}`, async () => {
        const ok = await h.call("request_egress_route", { ...twin, reason });
        assert.equal(ok.isError, false);
        const id = pendingId(ok.text);
        const before = (await h.records()).length;
        const res = await h.call("request_egress_route", { ...bad, reason });
        assert.equal(res.isError, true);
        assert.match(res.text, /^refused: /);
        assert.match(res.text.slice("refused: ".length), why);
        const added = (await h.records()).slice(before);
        assert.equal(added.length, 1, "one refused line, nothing queued");
        const [line] = added;
        assert.ok(line?.event === "refused");
        assert.equal(line.kind, "request_egress_route");
        assert.equal(`refused: ${line.reason}`, res.text);
        assert.deepEqual(JSON.parse(line.input), { ...bad, reason });
        assert.ok((await h.records()).some((r) => r.event === "request" && r.id === id));
      });

    test("refuses a git repository already declared and a question too long, after their twins", async () => {
      pendingId(
        (await h.call("request_git_repo", { upstream: "git@github.com:acme/lib.git", reason }))
          .text,
      );
      const dup = await h.call("request_git_repo", {
        upstream: "git@github.com:acme/app.git",
        reason,
      });
      assert.match(dup.text, /^refused: already allowed: /);
      pendingId((await h.call("ask_operator", { question: "q".repeat(2000) })).text);
      const long = await h.call("ask_operator", { question: "q".repeat(2001) });
      assert.equal(long.text, "refused: question must be at most 2000 characters");
    });

    test("flags a mixed-script host name for the operator without refusing it", async () => {
      const res = await h.call("request_egress_route", { host: "\u0430pple.com", reason });
      const id = pendingId(res.text);
      const record = (await h.records()).find((r) => r.event === "request" && r.id === id);
      assert.ok(record?.event === "request");
      assert.deepEqual(record.flags, ["mixed-script host name"]);
      assert.deepEqual(record.request, { kind: "egress-route", host: "xn--pple-43d.com", reason });
      const plain = await h.call("request_egress_route", { host: "apple.example.com", reason });
      const other = (await h.records()).find(
        (r) => r.event === "request" && r.id === pendingId(plain.text),
      );
      assert.ok(other?.event === "request");
      assert.deepEqual(other.flags, []);
    });

    test("an equal request while one waits gets the waiting one's id, whatever its reason", async () => {
      const first = pendingId(
        (
          await h.call("request_egress_route", {
            host: "same.example.com",
            methods: ["GET", "POST"],
            reason,
          })
        ).text,
      );
      const again = pendingId(
        (
          await h.call("request_egress_route", {
            host: "SAME.example.com.",
            methods: ["POST", "GET"],
            reason: "another reason",
          })
        ).text,
      );
      assert.equal(again, first);
      const different = pendingId(
        (
          await h.call("request_egress_route", {
            host: "same.example.com",
            methods: ["GET"],
            reason,
          })
        ).text,
      );
      assert.notEqual(different, first);
      const requests = (await h.records()).filter(
        (r) =>
          r.event === "request" &&
          r.request.kind === "egress-route" &&
          r.request.host === "same.example.com",
      );
      assert.equal(requests.length, 2);
    });

    test("request_status of an id this bottle never gave is refused", async () => {
      const res = await h.call("request_status", { id: "r-0000000000" });
      assert.equal(
        res.text,
        "refused: there is no request r-0000000000 in this bottle (ids come from a pending result)",
      );
      const bad = await h.call("request_status", { id: "../../etc/passwd" });
      assert.match(bad.text, /^refused: id must be a request id/);
    });
  });

  test("more new requests than ratePerMinute in a minute are refused; an equal one still joins", async () => {
    const h = await open({ ratePerMinute: 2 });
    const a = pendingId((await h.call("ask_operator", { question: "one?" })).text);
    pendingId((await h.call("ask_operator", { question: "two?" })).text);
    const third = await h.call("ask_operator", { question: "three?" });
    assert.equal(third.isError, true);
    assert.match(third.text, /^refused: rate limit: at most 2 new requests a minute/);
    assert.equal(pendingId((await h.call("ask_operator", { question: "one?" })).text), a);
    const refusals = (await h.records()).filter((r) => r.event === "refused");
    assert.equal(refusals.length, 1);
    assert.match(refusals[0]?.event === "refused" ? refusals[0].reason : "", /^rate limit/);
  });

  describe("decisions", () => {
    let h: Harness;
    before(async () => {
      h = await open({ waitSeconds: 5 });
    });

    /** Starts a tool call, answers it with a decision once the request is recorded. */
    async function decided(
      tool: string,
      args: Record<string, unknown>,
      match: (r: Extract<SuperviseRecord, { event: "request" }>) => boolean,
      decision: Omit<Partial<Decision>, "id">,
    ) {
      const call = h.call(tool, args);
      const id = await h.requestId(match);
      await h.decide({ ...decision, id });
      return { id, result: await call };
    }
    const host = (name: string) => (r: Extract<SuperviseRecord, { event: "request" }>) =>
      r.request.kind === "egress-route" && r.request.host === name;

    test("an approval with a lease: 'approved for 1h: host METHOD path'", async () => {
      const until = new Date(Date.now() + 3_600_000).toISOString();
      const { id, result } = await decided(
        "request_egress_route",
        { host: "lease.example.com", methods: ["GET"], paths: ["/v1/"], reason },
        host("lease.example.com"),
        { decision: "approve", until },
      );
      assert.equal(result.text, "approved for 1h: lease.example.com GET /v1/");
      const line = (await h.records()).find((r) => r.event === "decided" && r.id === id);
      assert.ok(line?.event === "decided");
      assert.equal(line.outcome, "approved");
      assert.equal(line.by, "operator");
      assert.equal(line.until, until);
    });

    test("an approval without a lease says what the host applied: 'approved: …'", async () => {
      const { result } = await decided(
        "request_egress_route",
        { host: "open.example.com", reason },
        host("open.example.com"),
        { decision: "approve", applied: "open.example.com GET" },
      );
      assert.equal(result.text, "approved: open.example.com GET");
    });

    test("a denial gives the operator's reason: 'denied: …'", async () => {
      const { result } = await decided(
        "request_git_repo",
        { upstream: "https://gitlab.com/acme/tools.git", reason },
        (r) => r.request.kind === "git-repo",
        { decision: "deny", reason: "use the mirror" },
      );
      assert.equal(result.text, "denied: use the mirror");
    });

    test("an answer comes back as the result: 'answer: …'", async () => {
      const { id, result } = await decided(
        "ask_operator",
        { question: "Which branch?" },
        (r) => r.request.kind === "question" && r.request.question === "Which branch?",
        { decision: "answer", answer: "use main" },
      );
      assert.equal(result.text, "answer: use main");
      const line = (await h.records()).find((r) => r.event === "decided" && r.id === id);
      assert.ok(line?.event === "decided");
      assert.deepEqual([line.outcome, line.answer], ["answered", "use main"]);
    });
  });

  test("the decisions folder is read only while a request waits: an idle server sets no timer for it", async () => {
    const POLL_MS = 37;
    const polls = () =>
      setIntervalSpy.mock.calls.filter((c) => c.arguments[1] === POLL_MS).map((c) => c.result);
    const setIntervalSpy = mock.method(globalThis, "setInterval");
    const clearIntervalSpy = mock.method(globalThis, "clearInterval");
    try {
      const h = await start({ waitSeconds: 5 }, undefined, POLL_MS);
      harnesses.push(h);
      await h.call("request_status", { id: "r-0000000000" });
      assert.equal(polls().length, 0, "no poll timer before any request");

      const call = h.call("ask_operator", { question: "Which port?" });
      const id = await h.requestId((r) => r.request.kind === "question");
      assert.equal(polls().length, 1, "one poll timer while the request waits");
      await h.decide({ id, decision: "answer", answer: "8080" });
      assert.equal((await call).text, "answer: 8080");
      const [poller] = polls();
      assert.ok(
        clearIntervalSpy.mock.calls.some((c) => c.arguments[0] === poller),
        "the poll timer is cleared once nothing waits",
      );
      assert.equal(polls().length, 1);
    } finally {
      setIntervalSpy.mock.restore();
      clearIntervalSpy.mock.restore();
    }
  });

  test("a call that waits its bound answers pending; request_status then reports the decision", async () => {
    const h = await open({ waitSeconds: 1 });
    const started = Date.now();
    const res = await h.call("request_egress_route", {
      host: "slow.example.com",
      paths: ["/v1/"],
      reason,
    });
    const waited = Date.now() - started;
    assert.ok(waited >= 900 && waited < 4_000, `waited ${waited} ms`);
    const id = pendingId(res.text);
    assert.equal(
      (await h.call("request_status", { id })).text,
      res.text,
      "still pending after 1 s",
    );
    await h.decide({
      id,
      decision: "approve",
      until: new Date(Date.now() + 2 * 3_600_000).toISOString(),
    });
    assert.equal(
      (await h.call("request_status", { id })).text,
      "approved for 2h: slow.example.com /v1/",
    );
  });

  test("ignores a decision for another bottle or an unknown id, and a second decision for the same id", async () => {
    const h = await open({ waitSeconds: 0 });
    const id = pendingId(
      (await h.call("request_egress_route", { host: "twice.example.com", reason })).text,
    );
    await h.decide({ id, slug: "other-bottle", decision: "approve" });
    await h.decide({ id: "r-zzzzzzzzzz", decision: "approve" });
    await until("both ignored", () =>
      Promise.resolve(
        h.logs.filter((l) => l.event === "decision-ignored").length >= 2 ? true : undefined,
      ),
    );
    assert.equal(
      (await h.call("request_status", { id })).text,
      `pending: request ${id} waits for the operator; call request_status with id ${id} later`,
    );
    // The right decision, written over the wrong one, decides.
    await h.decide({ id, decision: "deny", reason: "no" });
    const status = () => h.call("request_status", { id }).then((r) => r.text);
    await until("the denial", async () => ((await status()) === "denied: no" ? true : undefined));
    // A second file for the same id never decides again (read while another request waits).
    pendingId((await h.call("ask_operator", { question: "keeps the folder read" })).text);
    await h.decide({ id, decision: "approve" });
    await until("the second decision ignored", () =>
      Promise.resolve(
        h.logs.some((l) => l.event === "decision-ignored" && l.message.includes("already decided"))
          ? true
          : undefined,
      ),
    );
    assert.equal(await status(), "denied: no");
    const decidedLines = (await h.records()).filter((r) => r.event === "decided" && r.id === id);
    assert.equal(decidedLines.length, 1);
    assert.ok(!(await h.records()).some((r) => r.event === "decided" && r.outcome === "approved"));
  });

  test("operator silence until the timeout denies: 'denied (timeout)'", async () => {
    const h = await open({ waitSeconds: 5, timeoutSeconds: 1 });
    const started = Date.now();
    const res = await h.call("request_egress_route", { host: "silence.example.com", reason });
    assert.equal(res.text, "denied (timeout)");
    assert.ok(Date.now() - started < 3_000);
    const lines = await h.records();
    const request = lines.find((r) => r.event === "request");
    const decidedLine = lines.find((r) => r.event === "decided");
    assert.ok(request?.event === "request" && decidedLine?.event === "decided");
    assert.equal(decidedLine.id, request.id);
    assert.deepEqual([decidedLine.outcome, decidedLine.by], ["denied", "timeout"]);
    assert.ok(Date.parse(decidedLine.time) >= Date.parse(request.deadline) - 50);
  });

  test("a restart denies every request left waiting (restart), even one approved while down", async () => {
    const first = await open({ waitSeconds: 0 });
    const id = pendingId(
      (await first.call("request_egress_route", { host: "restart.example.com", reason })).text,
    );
    const decidedEarlier = pendingId(
      (await first.call("ask_operator", { question: "decided?" })).text,
    );
    await first.decide({ id: decidedEarlier, decision: "answer", answer: "yes" });
    await until("the answer", async () =>
      (await first.call("request_status", { id: decidedEarlier })).text === "answer: yes"
        ? true
        : undefined,
    );
    await first.stop();
    harnesses.splice(harnesses.indexOf(first), 1);
    // The host approves while the bundle is down: the file is there when it starts again.
    await first.decide({ id, decision: "approve" });
    const second = await open({ waitSeconds: 0 }, first.dir);
    assert.equal((await second.call("request_status", { id })).text, "denied (restart)");
    assert.equal((await second.call("request_status", { id: decidedEarlier })).text, "answer: yes");
    // While another request waits the folder is read, and the file still decides nothing.
    pendingId((await second.call("ask_operator", { question: "keeps the folder read" })).text);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await second.call("request_status", { id })).text, "denied (restart)");
    const lines = (await second.records()).filter((r) => r.event === "decided" && r.id === id);
    assert.equal(lines.length, 1);
    assert.ok(lines[0]?.event === "decided");
    assert.deepEqual([lines[0].outcome, lines[0].by], ["denied", "restart"]);
    assert.equal(
      (await second.records()).filter((r) => r.event === "decided" && r.id === decidedEarlier)
        .length,
      1,
      "a decided request is not decided again",
    );
  });

  test("an approval with `until` is followed by an `expired` line at that time", async () => {
    const h = await open({ waitSeconds: 5 });
    const call = h.call("request_egress_route", { host: "brief.example.com", reason });
    const id = await h.requestId((r) => r.request.kind === "egress-route");
    const time = Date.now();
    const until_ = new Date(time + 2_000).toISOString();
    await h.decide({
      id,
      decision: "approve",
      time: new Date(time).toISOString(),
      until: until_,
      applied: "brief.example.com",
    });
    // The lease as granted (from the decision's own time), however late the file was read.
    assert.equal((await call).text, "approved for 2s: brief.example.com");
    const expired = await until("the expired line", async () =>
      (await h.records()).find((r) => r.event === "expired" && r.id === id),
    );
    assert.ok(expired.event === "expired");
    assert.equal(expired.applied, "brief.example.com");
    const late = Date.parse(expired.time) - Date.parse(until_);
    assert.ok(late >= 0 && late < 1_000, `expired ${late} ms after until`);
    assert.equal(
      (await h.call("request_status", { id })).text,
      `expired: the approval of brief.example.com ended at ${until_}; ask again if you still need it`,
    );
  });

  describe("HTTP", () => {
    let h: Harness;
    before(async () => {
      h = await open();
    });

    function raw(method: string, path: string, hostHeader: string, body?: string) {
      return new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          {
            host: "127.0.0.1",
            port: h.server.port,
            method,
            path,
            headers: {
              host: hostHeader,
              accept: "application/json, text/event-stream",
              "content-type": "application/json",
            },
          },
          (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (text += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    }
    const list = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" });

    test("answers the bundle's and the loopback names in Host, on any port; refuses others", async () => {
      for (const host of [
        "supervise:9100",
        "supervise",
        "localhost:9100",
        "127.0.0.1:41234",
        "[::1]:9100",
      ]) {
        const res = await raw("POST", "/mcp", host, list);
        assert.equal(res.status, 200, host);
        assert.match(res.body, /request_egress_route/);
      }
      for (const host of ["evil.example.com", "supervise.evil.example.com:9100", "10.0.0.1:9100"]) {
        const res = await raw("POST", "/mcp", host, list);
        assert.equal(res.status, 403, host);
        assert.doesNotMatch(res.body, /request_egress_route/);
      }
    });

    test("GET /health answers 200; GET /mcp is 405 (stateless: no stream)", async () => {
      assert.equal((await raw("GET", "/health", "supervise:9100")).status, 200);
      const get = await raw("GET", "/mcp", "supervise:9100");
      assert.equal(get.status, 405);
    });

    test("server/discover (a 2026 client's probe) is 'method not found', so it falls back", async () => {
      const res = await raw(
        "POST",
        "/mcp",
        "supervise:9100",
        JSON.stringify({ jsonrpc: "2.0", id: 7, method: "server/discover", params: {} }),
      );
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body), {
        jsonrpc: "2.0",
        id: 7,
        error: { code: -32601, message: "Method not found" },
      });
    });

    test("a body over 64 KiB is refused before it is parsed", async () => {
      const res = await raw("POST", "/mcp", "supervise:9100", " ".repeat(70_000));
      assert.equal(res.status, 413);
      assert.equal((await raw("POST", "/mcp", "supervise:9100", list)).status, 200);
    });
  });

  test("ids look like r- and ten letters or digits", async () => {
    const h = await open();
    assert.match((await h.call("ask_operator", { question: "id?" })).text, ID);
  });
});

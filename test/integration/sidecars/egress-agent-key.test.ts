/**
 * The agent's proxy key: where the proxy's port is published on the host's loopback (the
 * smolmachines backend), anything local could reach it, so every request that enters it must
 * carry the bottle's key. Each way in — CONNECT to a decrypted route, CONNECT to a passthrough
 * route, absolute-form HTTP, absolute-form WebSocket — is first shown to work with the key, then
 * refused without it (407 proxy-auth-required) with nothing reaching the upstreams, and the key
 * (or whatever was presented instead) never written anywhere.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from "node:http";
import { connect as netConnect, createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import type { AuditRecord, EgressConfig, RouteRule } from "../../../src/shared/egress-config.js";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { PACKAGE_ROOT } from "../../../src/package-root.js";
import { EgressProxy } from "../../../src/sidecars/egress/proxy.js";
import {
  FakeUpstream,
  makeCa,
  readFrame,
  requestOver,
  socketAgent,
  tlsOver,
  wsFrame,
  type Ca,
  type ProxyResponse,
} from "../../helpers/egress.js";

const SLUG = "probe-agentkey1";
const KEY_ENV = "BOT_BOTTLE_AGENT_KEY";
const KEY = randomBytes(32).toString("hex");
const WRONG = randomBytes(32).toString("hex");
const TOKEN = "sk-ant-api03-" + "K3yT0k3nAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
const PLACEHOLDER = placeholderFor(TOKEN, "ANTHROPIC_API_KEY", SLUG);
const b64 = (text: string) => Buffer.from(text).toString("base64");
const basic = (user: string, key: string) => `Basic ${b64(`${user}:${key}`)}`;
const GOOD = basic("agent", KEY);
const WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** Every way a request can lack the key; the value of Proxy-Authorization, if any. */
const WITHOUT_KEY: [string, string | undefined][] = [
  ["no Proxy-Authorization", undefined],
  ["a wrong key", basic("agent", WRONG)],
  ["no colon", `Basic ${b64(KEY)}`],
  ["bad base64", `Basic ${b64(`agent:${KEY}`).slice(0, -2)}!!`],
  ["another scheme", `Bearer ${KEY}`],
  ["the key bare", KEY],
  ["an empty key", basic("agent", "")],
];
/** Every spelling of what was presented that must never be written down. */
const NEVER_WRITTEN = [KEY, WRONG, b64(`agent:${KEY}`), b64(`agent:${WRONG}`), b64(KEY)];

/** The head and body of one raw HTTP reply, and whether the proxy closed the connection. */
interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  closed: boolean;
  text: string;
}

function parseReply(text: string, closed: boolean): RawReply {
  const end = text.indexOf("\r\n\r\n");
  const lines = text.slice(0, end < 0 ? text.length : end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0);
  return { status, headers, body: end < 0 ? "" : text.slice(end + 4), closed, text };
}

/** Writes `bytes` to the proxy; the reply, read until the proxy closes (or 3 s pass). */
function raw(port: number, bytes: string): Promise<RawReply> {
  return new Promise((resolve) => {
    const s = netConnect(port, "127.0.0.1", () => s.write(bytes));
    let out = "";
    const timer = setTimeout(() => {
      s.destroy();
      resolve(parseReply(out, false));
    }, 3000);
    s.on("data", (d: Buffer) => (out += d.toString("latin1")));
    const done = () => {
      clearTimeout(timer);
      resolve(parseReply(out, true));
    };
    s.on("close", done);
    s.on("error", () => s.destroy());
  });
}

const authLine = (auth: string | undefined) =>
  auth === undefined ? "" : `Proxy-Authorization: ${auth}\r\n`;

/** CONNECT with `auth`; the socket when the proxy answered 200, else its reply. */
function connectWith(
  port: number,
  authority: string,
  auth: string | undefined,
): Promise<{ socket: Socket } | ProxyResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      method: "CONNECT",
      path: authority,
      agent: false,
      headers: { host: authority, ...(auth === undefined ? {} : { "proxy-authorization": auth }) },
    });
    req.on("connect", (res, socket: Socket) => {
      if (res.statusCode === 200) return resolve({ socket });
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: "" });
    });
    req.on("error", reject);
    req.end();
  });
}

/** A plain HTTP upstream that records requests and echoes WebSocket messages as "echo:…". */
async function plainUpstream(): Promise<{
  server: Server;
  port: number;
  seen: { url: string; headers: IncomingHttpHeaders }[];
}> {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const server = createHttpServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    req.resume();
    req.on("end", () => res.end(`plain ${req.method} ${req.url}`));
  });
  server.on("upgrade", (req, socket: Socket) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    const accept = createHash("sha1")
      .update(String(req.headers["sec-websocket-key"]) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
      .digest("base64");
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    let buf = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (let f = readFrame(buf); f; f = readFrame(buf)) {
        buf = buf.subarray(f.size);
        if (f.opcode === 8) return socket.end();
        socket.write(wsFrame(`echo:${f.payload.toString()}`));
      }
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as { port: number }).port, seen };
}

describe("the egress proxy asks for the agent's key, in process", () => {
  let dir: string;
  let bottleCa: Ca;
  let upstreamCa: Ca;
  let upstream: FakeUpstream;
  let plain: Awaited<ReturnType<typeof plainUpstream>>;
  let proxy: EgressProxy;
  let port: number;
  let audit: AuditRecord[];
  let logged: string[];
  let dialled: number;
  let api: string;
  let pinned: string;
  let open: string;

  const routes = (): RouteRule[] => [
    {
      host: "api.example.test",
      port: upstream.port,
      tlsPassthrough: false,
      allowIpLiteral: false,
      auth: { header: "x-api-key", tokenEnv: "ANTHROPIC_API_KEY" },
    },
    {
      host: "pinned.example.test",
      port: upstream.port,
      tlsPassthrough: true,
      allowIpLiteral: false,
    },
    { host: "plain.example.test", port: plain.port, tlsPassthrough: false, allowIpLiteral: false },
  ];
  const config = (extra: Partial<EgressConfig> = {}): EgressConfig => ({
    slug: SLUG,
    generation: 1,
    secretEnv: ["ANTHROPIC_API_KEY"],
    routes: routes(),
    extraHosts: {
      "api.example.test": "127.0.0.1",
      "pinned.example.test": "127.0.0.1",
      "plain.example.test": "127.0.0.1",
    },
    agentKeyEnv: KEY_ENV,
    ...extra,
  });

  /** The config without agentKeyEnv, as the Docker backend writes it. */
  const keyless = (generation: number): EgressConfig => {
    const c = config({ generation });
    delete c.agentKeyEnv;
    return c;
  };

  /** The four ways into the proxy, each as the raw request that opens it with `auth`. */
  const waysIn = (): { name: string; host: string; bytes: (auth?: string) => string }[] => [
    {
      name: "CONNECT to a decrypted route",
      host: "api.example.test",
      bytes: (auth) => `CONNECT ${api} HTTP/1.1\r\nHost: ${api}\r\n${authLine(auth)}\r\n`,
    },
    {
      name: "CONNECT to a passthrough route",
      host: "pinned.example.test",
      bytes: (auth) => `CONNECT ${pinned} HTTP/1.1\r\nHost: ${pinned}\r\n${authLine(auth)}\r\n`,
    },
    {
      name: "absolute-form HTTP",
      host: "plain.example.test",
      bytes: (auth) =>
        `POST http://${open}/upload HTTP/1.1\r\nHost: ${open}\r\n${authLine(auth)}Content-Length: 5\r\n\r\nhello`,
    },
    {
      name: "absolute-form WebSocket",
      host: "plain.example.test",
      bytes: (auth) =>
        `GET http://${open}/ws HTTP/1.1\r\nHost: ${open}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n${authLine(auth)}\r\n`,
    },
  ];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-agent-key-"));
    [bottleCa, upstreamCa] = await Promise.all([makeCa(dir, "bottle"), makeCa(dir, "upstream")]);
    upstream = new FakeUpstream(upstreamCa);
    await upstream.start();
    plain = await plainUpstream();
    for (const server of [upstream.server, plain.server]) server.on("connection", () => dialled++);
    audit = [];
    logged = [];
    proxy = new EgressProxy({
      config: config(),
      trustCa: upstreamCa.cert,
      ca: bottleCa.authority,
      secrets: { ANTHROPIC_API_KEY: TOKEN },
      agentKey: KEY,
      audit: (r) => audit.push(r),
      log: (event, message, fields) => logged.push(JSON.stringify({ event, message, ...fields })),
      lookup: () => Promise.reject(Object.assign(new Error("not found"), { code: "ENOTFOUND" })),
    });
    port = await proxy.listen(0, "127.0.0.1");
    api = `api.example.test:${upstream.port}`;
    pinned = `pinned.example.test:${upstream.port}`;
    open = `plain.example.test:${plain.port}`;
  });

  beforeEach(() => {
    upstream.received.length = 0;
    plain.seen.length = 0;
    audit.length = 0;
    logged.length = 0;
    dialled = 0;
  });

  after(async () => {
    await proxy.close();
    await upstream.close();
    plain.server.closeAllConnections();
    plain.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A WebSocket opened with an absolute-form upgrade; the 101 head and the echo of "hi". */
  function wsAbsolute(auth: string): Promise<{ head: string; echo: string }> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, "127.0.0.1", () => s.write(waysIn()[3]!.bytes(auth)));
      let buf = Buffer.alloc(0);
      let head = "";
      s.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (!head) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          head = buf.subarray(0, end).toString("latin1");
          buf = buf.subarray(end + 4);
          s.write(wsFrame("hi", { mask: true }));
        }
        const f = readFrame(buf);
        if (f) {
          s.destroy();
          resolve({ head, echo: f.payload.toString() });
        }
      });
      s.on("error", reject);
      s.on("close", () => resolve({ head, echo: "" }));
    });
  }

  describe("with the key, every way in works", () => {
    test("CONNECT then HTTPS: the tunnel's requests need no key, and none is forwarded", async () => {
      const t = await connectWith(port, api, GOOD);
      assert.ok("socket" in t, "the CONNECT with the key is answered 200");
      const tls = await tlsOver(t.socket, "api.example.test", bottleCa.cert);
      const agent = socketAgent(tls);
      const first = await requestOver(agent, api, {
        path: "/v1/one",
        headers: { "x-api-key": PLACEHOLDER },
      });
      // A client that repeats the header inside the tunnel: consumed, never scanned or sent.
      const second = await requestOver(agent, api, {
        path: "/v1/two",
        headers: { "x-api-key": PLACEHOLDER, "proxy-authorization": GOOD },
      });
      tls.destroy();
      assert.deepEqual([first.status, second.status], [200, 200]);
      assert.deepEqual(
        upstream.received.map((r) => [
          r.url,
          r.headers["x-api-key"],
          r.headers["proxy-authorization"],
        ]),
        [
          ["/v1/one", TOKEN, undefined],
          ["/v1/two", TOKEN, undefined],
        ],
      );
      assert.ok(audit.every((a) => a.decision === "allow"));
    });

    test("CONNECT to a passthrough route", async () => {
      const t = await connectWith(port, pinned, GOOD);
      assert.ok("socket" in t);
      const tls = await tlsOver(t.socket, "pinned.example.test", upstreamCa.cert);
      const res = await requestOver(socketAgent(tls), pinned, { path: "/pinned" });
      tls.destroy();
      assert.equal(res.status, 200);
      assert.deepEqual(
        upstream.received.map((r) => r.url),
        ["/pinned"],
      );
    });

    test("absolute-form HTTP: allowed, and Proxy-Authorization does not go upstream", async () => {
      const reply = await raw(
        port,
        `GET http://${open}/hello HTTP/1.1\r\nHost: ${open}\r\nProxy-Authorization: ${GOOD}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(reply.status, 200);
      assert.equal(reply.body, "plain GET /hello");
      assert.equal(plain.seen.length, 1);
      assert.equal(plain.seen[0]?.headers["proxy-authorization"], undefined);
      assert.ok(!JSON.stringify(plain.seen).includes(KEY));
    });

    test("absolute-form WebSocket: upgraded, messages echoed, no key upstream", async () => {
      const ws = await wsAbsolute(GOOD);
      assert.match(ws.head, /^HTTP\/1\.1 101/);
      assert.equal(ws.echo, "echo:hi");
      assert.equal(plain.seen[0]?.headers["proxy-authorization"], undefined);
    });

    test("any user name goes with the key: the key decides", async () => {
      for (const user of ["someone-else", "", "Agent Smith"]) {
        const auth = basic(user, KEY);
        const t = await connectWith(port, api, auth);
        assert.ok("socket" in t, `CONNECT as "${user}"`);
        t.socket.destroy();
        const reply = await raw(
          port,
          `GET http://${open}/u HTTP/1.1\r\nHost: ${open}\r\nProxy-Authorization: ${auth}\r\nConnection: close\r\n\r\n`,
        );
        assert.equal(reply.status, 200, `absolute-form as "${user}"`);
      }
    });

    test("Proxy-Authorization is consumed, not scanned: a held token there never leaves", async () => {
      const reply = await raw(
        port,
        `GET http://${open}/x HTTP/1.1\r\nHost: ${open}\r\nProxy-Authorization: ${basic(TOKEN, KEY)}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(reply.status, 200);
      assert.ok(!JSON.stringify(plain.seen).includes(TOKEN));
    });
  });

  describe("without the key, every way in is refused and nothing reaches an upstream", () => {
    for (const [what, auth] of WITHOUT_KEY)
      test(`${what}: 407 proxy-auth-required on each way in`, async () => {
        for (const way of waysIn()) {
          audit.length = 0;
          logged.length = 0;
          const reply = await raw(port, way.bytes(auth));
          assert.equal(reply.status, 407, way.name);
          assert.equal(reply.headers["proxy-authenticate"], 'Basic realm="bot-bottle"', way.name);
          assert.equal(reply.headers["x-bot-bottle-refusal"], "proxy-auth-required", way.name);
          assert.equal(reply.headers["connection"], "close", way.name);
          assert.ok(reply.closed, `${way.name}: the proxy closed the connection`);
          assert.match(reply.body, /^bot-bottle: /, way.name);
          assert.deepEqual(
            audit.map((a) => [a.decision, a.tag, a.status, a.host]),
            [["refuse", "proxy-auth-required", 407, way.host]],
            `${way.name}: one audit line`,
          );
          const written = reply.text + JSON.stringify(audit) + logged.join("\n");
          for (const value of NEVER_WRITTEN)
            assert.ok(!written.includes(value), `${way.name}: the presented value is not written`);
          assert.ok(auth === undefined || !written.includes(auth), way.name);
        }
        assert.deepEqual(upstream.received, []);
        assert.deepEqual(plain.seen, []);
        assert.equal(dialled, 0, "no upstream was even connected to");
      });

    test("two Proxy-Authorization lines are refused, even when one holds the key", async () => {
      const reply = await raw(
        port,
        `CONNECT ${api} HTTP/1.1\r\nHost: ${api}\r\nProxy-Authorization: ${GOOD}\r\nProxy-Authorization: ${basic("x", WRONG)}\r\n\r\n`,
      );
      assert.equal(reply.headers["x-bot-bottle-refusal"], "proxy-auth-required");
      assert.equal(dialled, 0);
    });

    test("a request pipelined behind a refused one is never read, even with the key", async () => {
      const reply = await raw(
        port,
        `GET http://${open}/first HTTP/1.1\r\nHost: ${open}\r\n\r\n` +
          `GET http://${open}/second HTTP/1.1\r\nHost: ${open}\r\nProxy-Authorization: ${GOOD}\r\n\r\n`,
      );
      assert.equal(reply.status, 407);
      assert.equal([...reply.text.matchAll(/HTTP\/1\.1 \d{3}/g)].length, 1, "one answer only");
      assert.ok(reply.closed);
      assert.deepEqual(plain.seen, []);
      // The twin: the same second request on its own goes through.
      const twin = await raw(
        port,
        `GET http://${open}/second HTTP/1.1\r\nHost: ${open}\r\nProxy-Authorization: ${GOOD}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(twin.status, 200);
    });

    test("an origin-form GET / keeps its 403 not-a-proxy-request, key or no key", async () => {
      for (const auth of [undefined, GOOD, basic("agent", WRONG)]) {
        const reply = await raw(
          port,
          `GET / HTTP/1.1\r\nHost: egress\r\n${authLine(auth)}Connection: close\r\n\r\n`,
        );
        assert.equal(reply.status, 403);
        assert.equal(reply.headers["x-bot-bottle-refusal"], "not-a-proxy-request");
        assert.equal(reply.headers["proxy-authenticate"], undefined);
      }
    });
  });

  describe("the key holds across reloads", () => {
    test("a reload that renames or drops agentKeyEnv still asks for the key read at start", async () => {
      try {
        for (const next of [config({ generation: 2, agentKeyEnv: "ANOTHER_KEY" }), keyless(3)]) {
          proxy.reload(next, upstreamCa.cert);
          const without = await connectWith(port, api, undefined);
          assert.ok("status" in without && without.status === 407);
          assert.equal(without.headers["x-bot-bottle-refusal"], "proxy-auth-required");
          const wrong = await connectWith(port, api, basic("agent", WRONG));
          assert.ok("status" in wrong && wrong.status === 407);
          const right = await connectWith(port, api, GOOD);
          assert.ok("socket" in right, "the key read at start still opens");
          right.socket.destroy();
        }
      } finally {
        proxy.reload(config(), upstreamCa.cert);
      }
      assert.equal(dialled, 0);
    });

    test("a proxy never runs open: no key for a config that names one, or added by a reload", () => {
      const options = {
        ca: bottleCa.authority,
        secrets: {},
        audit: () => undefined,
        log: () => undefined,
      };
      assert.throws(() => new EgressProxy({ ...options, config: config() }), /agentKeyEnv/);
      assert.throws(
        () => new EgressProxy({ ...options, config: config(), agentKey: "" }),
        /agentKeyEnv/,
      );
      const started = new EgressProxy({ ...options, config: keyless(1) });
      assert.throws(() => started.reload(config(), undefined), /restart/);
      void started.close();
    });
  });
});

/** A free loopback port (the daemon logs the port it was given, not the one it got). */
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe("the egress daemon and the agent's key", () => {
  const MAIN = join(PACKAGE_ROOT, "src", "sidecars", "egress", "main.ts");
  let dir: string;
  let ca: Ca;
  let plain: Awaited<ReturnType<typeof plainUpstream>>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-agent-key-daemon-"));
    ca = await makeCa(dir, "bottle");
    plain = await plainUpstream();
  });
  after(async () => {
    plain.server.closeAllConnections();
    plain.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const daemonConfig = (extra: Partial<EgressConfig> = {}): EgressConfig => ({
    slug: SLUG,
    generation: 1,
    secretEnv: [],
    routes: [
      {
        host: "plain.example.test",
        port: plain.port,
        tlsPassthrough: false,
        allowIpLiteral: false,
      },
    ],
    extraHosts: { "plain.example.test": "127.0.0.1" },
    agentKeyEnv: KEY_ENV,
    ...extra,
  });

  /** Starts the daemon; its output so far, a wait for an event, and its exit. */
  async function start(env: Record<string, string | undefined>, port: number) {
    const file = join(dir, "egress.json");
    await writeFile(file, JSON.stringify(daemonConfig()));
    const childEnv: Record<string, string | undefined> = {
      ...process.env,
      BOT_BOTTLE_SLUG: SLUG,
      BOT_BOTTLE_CA_KEY: ca.key,
      ...env,
    };
    for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        MAIN,
        ...["--port", String(port), "--config", file, "--audit-dir", join(dir, "audit")],
        ...["--ca-cert", join(dir, "bottle", "ca.crt")],
      ],
      { env: childEnv, stdio: ["ignore", "pipe", "pipe"], cwd: PACKAGE_ROOT },
    );
    let output = "";
    const waiters: (() => void)[] = [];
    const onData = (c: string) => {
      output += c;
      waiters.splice(0).forEach((w) => w());
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    const exited = new Promise<number | null>((r) => child.on("close", r));
    const events = () =>
      output
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const waitFor = async (event: string) => {
      const deadline = Date.now() + 15_000;
      while (!events().some((e) => e["event"] === event)) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no "${event}" event; output: ${output}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    };
    return { child, file, output: () => output, events, waitFor, exited };
  }

  test("starts with the key and asks for it, across a reload; refuses to start without it", async () => {
    const port = await freePort();
    const d = await start({ [KEY_ENV]: KEY }, port);
    try {
      await d.waitFor("listen");
      const get = (auth: string | undefined) =>
        raw(
          port,
          `GET http://plain.example.test:${plain.port}/d HTTP/1.1\r\nHost: plain.example.test:${plain.port}\r\n${authLine(auth)}Connection: close\r\n\r\n`,
        );
      assert.equal((await get(GOOD)).status, 200);
      assert.equal((await get(undefined)).status, 407);
      assert.equal(
        (await get(basic("agent", WRONG))).headers["x-bot-bottle-refusal"],
        "proxy-auth-required",
      );
      const tunnel = await connectWith(port, "plain.example.test:443", undefined);
      assert.ok("status" in tunnel && tunnel.status === 407);
      // A reload that renames the variable keeps the key read at start, and says so.
      await writeFile(
        d.file,
        JSON.stringify(daemonConfig({ generation: 2, agentKeyEnv: "ANOTHER" })),
      );
      d.child.kill("SIGHUP");
      await d.waitFor("agent-key-kept");
      assert.equal((await get(undefined)).status, 407);
      assert.equal((await get(GOOD)).status, 200);
    } finally {
      d.child.kill("SIGTERM");
    }
    assert.equal(await d.exited, 0);
    const auditText = await readFile(join(dir, "audit", "egress.jsonl"), "utf8");
    const records = auditText
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(
      records.map((r) => [r.decision, r.tag, r.status]),
      [
        ["allow", "allowed", 200],
        ["refuse", "proxy-auth-required", 407],
        ["refuse", "proxy-auth-required", 407],
        ["refuse", "proxy-auth-required", 407],
        ["refuse", "proxy-auth-required", 407],
        ["allow", "allowed", 200],
      ],
    );
    for (const value of NEVER_WRITTEN) {
      assert.ok(!auditText.includes(value), "the key is not in the audit file");
      assert.ok(!d.output().includes(value), "the key is not in the daemon's output");
    }
    assert.equal(plain.seen.length, 2, "only the requests with the key arrived");

    // The same daemon with the variable empty, or unset, refuses to start: config-invalid.
    for (const value of ["", undefined]) {
      const bad = await start({ [KEY_ENV]: value }, await freePort());
      assert.equal(await bad.exited, 1);
      assert.deepEqual(
        bad.events().map((e) => [e["component"], e["event"]]),
        [["egress", "config-invalid"]],
      );
      const event = bad.events()[0] ?? {};
      assert.deepEqual(
        (event["problems"] as { path: string }[]).map((p) => p.path),
        ["agentKeyEnv"],
      );
      assert.match(String(event["message"]), new RegExp(`${KEY_ENV}.*refusing to start`));
    }
  });
});

/**
 * The egress interceptor daemon, run as init runs it (its own process, config file, token in its
 * environment), with a plain TCP echo server standing in for the bundle's egress proxy and a
 * client that writes smolvm's preamble the way the smolvm double's relay does.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PACKAGE_ROOT } from "../../../src/package-root.js";
import { BUNDLE_VM_ADDRESS, type InterceptConfig } from "../../../src/shared/intercept-config.js";

const MAIN = join(PACKAGE_ROOT, "src", "sidecars", "intercept", "main.ts");
const SLUG = "t-icpt";
const TOKEN_ENV = "BOT_BOTTLE_INTERCEPTOR_TOKEN";
const TOKEN_HEX = randomBytes(32).toString("hex");
const WRONG_HEX = randomBytes(32).toString("hex");
const DEADLINE_MS = 600;

/** smolvm's preamble for an IPv4 destination (as relay.mjs writes it). */
function preamble(address: string, port: number, tokenHex = TOKEN_HEX): Buffer {
  const head = Buffer.alloc(44);
  head.write("SMOLICPT", 0, "latin1");
  head[8] = 1;
  Buffer.from(tokenHex, "hex").copy(head, 9);
  head[41] = 4;
  head.writeUInt16BE(port, 42);
  return Buffer.concat([head, Buffer.from(address.split(".").map(Number))]);
}

/** A TCP echo server that counts its connections and keeps what it received. */
async function echoServer(): Promise<{
  server: Server;
  port: number;
  seen: () => number;
  got: () => string;
}> {
  let connections = 0;
  let got = "";
  const server = createServer((s) => {
    connections++;
    s.on("data", (c: Buffer) => (got += c.toString("latin1")));
    s.on("error", () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  assert.ok(address && typeof address === "object");
  return { server, port: address.port, seen: () => connections, got: () => got };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  assert.ok(address && typeof address === "object");
  await new Promise((r) => server.close(r));
  return address.port;
}

interface Exchange {
  socket: Socket;
  received: () => Buffer;
  /** Resolves once at least `n` bytes have arrived (rejects if the connection closes first). */
  waitBytes: (n: number) => Promise<void>;
  /** Everything received, and how the connection ended, once it has closed. */
  closed: Promise<{ bytes: Buffer; error: string | undefined; ms: number }>;
}

function open(port: number, first: Buffer, end = false): Exchange {
  const started = Date.now();
  const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  let received = Buffer.alloc(0);
  let error: string | undefined;
  const waiters: (() => void)[] = [];
  socket.on("data", (c: Buffer) => {
    received = Buffer.concat([received, c]);
    waiters.splice(0).forEach((w) => w());
  });
  socket.on("error", (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
  socket.on("end", () => socket.end());
  const closed = new Promise<{ bytes: Buffer; error: string | undefined; ms: number }>((r) =>
    socket.on("close", () => {
      waiters.splice(0).forEach((w) => w());
      r({ bytes: received, error, ms: Date.now() - started });
    }),
  );
  socket.write(first);
  if (end) socket.end();
  const waitBytes = async (n: number) => {
    const deadline = Date.now() + 5000;
    while (received.length < n) {
      if (socket.destroyed || Date.now() > deadline)
        throw new Error(`wanted ${n} bytes, got ${received.length} (${error ?? "closed"})`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  return { socket, received: () => received, waitBytes, closed };
}

/** Starts the daemon; its output, a wait for an event, and its exit code. */
function startDaemon(configFile: string, env: Record<string, string | undefined>) {
  const childEnv: Record<string, string | undefined> = {
    ...process.env,
    BOT_BOTTLE_SLUG: SLUG,
    ...env,
  };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", MAIN, "--config", configFile, "--port", "0", "--host", "127.0.0.1"].concat([
      "--deadline-ms",
      String(DEADLINE_MS),
    ]),
    { env: childEnv, stdio: ["ignore", "pipe", "pipe"], cwd: PACKAGE_ROOT },
  );
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (c: string) => (output += c));
  child.stderr?.setEncoding("utf8").on("data", (c: string) => (output += c));
  const exited = new Promise<number | null>((r) => child.on("close", r));
  const events = () =>
    output
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const waitFor = async (event: string, count = 1) => {
    const deadline = Date.now() + 15_000;
    while (events().filter((e) => e["event"] === event).length < count) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`no "${event}" event; output: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return events().filter((e) => e["event"] === event)[count - 1] as Record<string, unknown>;
  };
  return { child, output: () => output, events, waitFor, exited };
}

describe("the egress interceptor relays only admitted flows that carry the token", () => {
  let dir: string;
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let daemon: ReturnType<typeof startDaemon>;
  let port: number;
  let refusals = 0;

  /** The next `refuse` event the daemon logs. */
  const nextRefusal = () => daemon.waitFor("refuse", ++refusals);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-intercept-"));
    echo = await echoServer();
    const config: InterceptConfig = {
      slug: SLUG,
      tokenEnv: TOKEN_ENV,
      port: 9097,
      flows: [
        { address: BUNDLE_VM_ADDRESS, port: 9099, to: echo.port },
        { address: BUNDLE_VM_ADDRESS, port: 9100, to: await deadPort() },
      ],
    };
    const file = join(dir, "intercept.json");
    await writeFile(file, JSON.stringify(config));
    daemon = startDaemon(file, { [TOKEN_ENV]: TOKEN_HEX });
    const listen = await daemon.waitFor("listen");
    port = listen["port"] as number;
    assert.equal(listen["flows"], 2);
  });
  after(async () => {
    daemon.child.kill("SIGTERM");
    assert.equal(await daemon.exited, 0);
    echo.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The allowed twin: an admitted flow with the token gets 0 and an echo. */
  async function allowedTwin(): Promise<void> {
    const before = echo.seen();
    const x = open(port, Buffer.concat([preamble(BUNDLE_VM_ADDRESS, 9099), Buffer.from("ping")]));
    await x.waitBytes(5);
    assert.deepEqual(x.received(), Buffer.from("\0ping"));
    x.socket.end();
    await x.closed;
    assert.equal(echo.seen(), before + 1);
  }

  test("an admitted flow gets verdict 0, then its bytes echo both ways, those behind the preamble first", async () => {
    const before = echo.seen();
    const x = open(port, Buffer.concat([preamble(BUNDLE_VM_ADDRESS, 9099), Buffer.from("hello ")]));
    await x.waitBytes(7);
    assert.deepEqual(x.received(), Buffer.from("\0hello "));
    x.socket.write("world");
    await x.waitBytes(12);
    x.socket.end();
    const done = await x.closed;
    assert.equal(done.bytes.toString("latin1"), "\0hello world");
    assert.equal(done.error, undefined);
    assert.equal(echo.seen(), before + 1);
    assert.ok(echo.got().includes("hello world"));
    const admit = await daemon.waitFor("admit");
    assert.equal(admit["destination"], "192.0.2.1:9099");
    assert.equal(admit["to"], echo.port);
  });

  test("a destination no flow admits gets ECONNREFUSED (111) and reaches nothing", async () => {
    await allowedTwin();
    const before = { seen: echo.seen(), got: echo.got() };
    const x = open(port, Buffer.concat([preamble("192.0.2.1", 22), Buffer.from("SSH-2.0-x\r\n")]));
    const done = await x.closed;
    assert.deepEqual(done.bytes, Buffer.from([111]));
    const other = await open(port, preamble("10.0.0.1", 9099)).closed;
    assert.deepEqual(other.bytes, Buffer.from([111]));
    assert.equal(echo.seen(), before.seen);
    assert.equal(echo.got(), before.got);
    const refusal = await nextRefusal();
    assert.equal(refusal["reason"], "not-admitted");
    assert.equal(refusal["destination"], "192.0.2.1:22");
    assert.equal(refusal["errno"], 111);
    assert.equal((await nextRefusal())["destination"], "10.0.0.1:9099");
  });

  test("an admitted flow whose bundle port is closed gets ECONNREFUSED (111)", async () => {
    await allowedTwin();
    const done = await open(port, preamble(BUNDLE_VM_ADDRESS, 9100)).closed;
    assert.deepEqual(done.bytes, Buffer.from([111]));
    const failed = await daemon.waitFor("upstream-failed");
    assert.equal(failed["errno"], 111);
  });

  test("a wrong token is closed without a verdict byte and reaches nothing", async () => {
    await allowedTwin();
    const before = { seen: echo.seen(), got: echo.got() };
    const x = open(
      port,
      Buffer.concat([preamble(BUNDLE_VM_ADDRESS, 9099, WRONG_HEX), Buffer.from("GET /")]),
    );
    const done = await x.closed;
    assert.equal(done.bytes.length, 0);
    assert.equal(echo.seen(), before.seen);
    assert.equal(echo.got(), before.got);
    const refusal = await nextRefusal();
    assert.equal(refusal["reason"], "token");
    assert.equal(refusal["destination"], undefined);
  });

  test("a wrong magic, version or family is closed without a verdict byte and reaches nothing", async () => {
    await allowedTwin();
    const before = { seen: echo.seen(), got: echo.got() };
    const version = preamble(BUNDLE_VM_ADDRESS, 9099);
    version[8] = 2;
    const family = preamble(BUNDLE_VM_ADDRESS, 9099);
    family[41] = 5;
    const cases: [Buffer, string][] = [
      [Buffer.from("CONNECT 192.0.2.1:9099 HTTP/1.1\r\n\r\n"), "magic"],
      [version, "version"],
      [family, "family"],
    ];
    for (const [bytes, reason] of cases) {
      const done = await open(port, bytes).closed;
      assert.equal(done.bytes.length, 0, reason);
      assert.equal((await nextRefusal())["reason"], reason);
    }
    assert.equal(echo.seen(), before.seen);
    assert.equal(echo.got(), before.got);
  });

  test("a preamble cut short is closed without a verdict byte and reaches nothing", async () => {
    await allowedTwin();
    const before = echo.seen();
    const done = await open(port, preamble(BUNDLE_VM_ADDRESS, 9099).subarray(0, 46), true).closed;
    assert.equal(done.bytes.length, 0);
    assert.equal(echo.seen(), before);
    assert.equal((await nextRefusal())["reason"], "truncated");
    // A bare connect-and-close (init's readiness probe) is refused the same way, told apart.
    const probe = await open(port, Buffer.alloc(0), true).closed;
    assert.equal(probe.bytes.length, 0);
    assert.equal(echo.seen(), before);
    assert.equal((await nextRefusal())["reason"], "empty");
  });

  test("a preamble slower than the deadline is closed without a verdict byte and reaches nothing", async () => {
    await allowedTwin();
    const before = echo.seen();
    const whole = preamble(BUNDLE_VM_ADDRESS, 9099);
    const x = open(port, whole.subarray(0, 20));
    const done = await x.closed;
    assert.equal(done.bytes.length, 0);
    assert.ok(done.ms >= DEADLINE_MS - 50, `closed after ${done.ms} ms`);
    assert.ok(done.ms < DEADLINE_MS + 3000, `closed after ${done.ms} ms`);
    assert.equal(echo.seen(), before);
    assert.equal((await nextRefusal())["reason"], "deadline");
  });

  test("the token never appears in the daemon's output", async () => {
    await allowedTwin();
    const out = daemon.output();
    assert.ok(out.includes('"listen"'));
    for (const hex of [TOKEN_HEX, WRONG_HEX]) {
      assert.ok(!out.toLowerCase().includes(hex));
      assert.ok(!out.includes(Buffer.from(hex, "hex").toString("base64")));
      assert.ok(!out.includes(Buffer.from(hex, "hex").toString("latin1")));
    }
  });
});

describe("the egress interceptor refuses to start on a bad config or token", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-intercept-bad-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const good: InterceptConfig = {
    slug: SLUG,
    tokenEnv: TOKEN_ENV,
    port: 9097,
    flows: [{ address: BUNDLE_VM_ADDRESS, port: 9099, to: 9099 }],
  };

  async function refusesToStart(config: unknown, token: string | undefined) {
    const file = join(dir, `intercept-${randomBytes(4).toString("hex")}.json`);
    await writeFile(file, typeof config === "string" ? config : JSON.stringify(config));
    const d = startDaemon(file, { [TOKEN_ENV]: token });
    const code = await d.exited;
    const events = d.events();
    assert.equal(code, 1, d.output());
    assert.equal(events.length, 1, d.output());
    assert.equal(events[0]?.["event"], "config-invalid");
    assert.equal(events[0]?.["file"], file);
    if (token) assert.ok(!d.output().toLowerCase().includes(token.toLowerCase()));
    return events[0] as { message: string; problems: { path: string; message: string }[] };
  }

  test("starts on a valid file and token, then exits on each bad one with config-invalid", async () => {
    const file = join(dir, "good.json");
    await writeFile(file, JSON.stringify(good));
    const d = startDaemon(file, { [TOKEN_ENV]: TOKEN_HEX });
    await d.waitFor("listen");
    d.child.kill("SIGTERM");
    assert.equal(await d.exited, 0);

    const flows = await refusesToStart(
      { ...good, flows: [{ address: "192.0.2.001", port: 9099, to: 0 }], extra: 1 },
      TOKEN_HEX,
    );
    assert.deepEqual(flows.problems.map((p) => p.path).sort(), [
      "extra",
      "flows[0].address",
      "flows[0].to",
    ]);
    await refusesToStart("{ not json", TOKEN_HEX);
    const unset = await refusesToStart(good, undefined);
    assert.equal(unset.problems[0]?.path, "tokenEnv");
    assert.match(unset.message, /not 64 hex digits/);
    await refusesToStart(good, TOKEN_HEX.slice(2));
    await refusesToStart(good, `${TOKEN_HEX.slice(1)}z`);
    await refusesToStart(good, "");
  });
});

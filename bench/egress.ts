/**
 * bench/egress: what bot-bottle's egress proxy costs, next to a direct connection and to Debian's
 * mitmdump (the proxy bot-bottle's design replaced), all against the same fake HTTPS upstream on
 * loopback, in this run. Prints a table; never passes or fails.
 *   npm run bench:egress [-- SECONDS_PER_SCENARIO]
 * bot-bottle's proxy runs as in a bottle (its own process, the built daemon): routes, credential
 * injection and secret scanning on. Installs mitmproxy from Debian when it is missing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants as fsConstants, existsSync } from "node:fs";
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect as netConnect, createServer, type Socket } from "node:net";
import { cpus, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { run } from "../src/exec/run.js";
import { PACKAGE_ROOT } from "../src/package-root.js";
import type { EgressConfig } from "../src/shared/egress-config.js";
import { CertificateAuthority } from "../src/sidecars/egress/certs.js";
import { createCa } from "../src/state/bottle-state.js";

const SECONDS = Number(process.argv[2] ?? 4);
const BIG = 10 * 1024 * 1024;
const HOST = "localhost";

interface Target {
  name: string;
  /** The proxy's port; none for direct. */
  proxy?: number;
  /** The CA the client trusts for this path. */
  ca: string;
  /** The process whose memory is measured. */
  pid?: number;
}

// --- a minimal HTTP/1.1 client over one TLS socket, the same for every target ----------------

class Connection {
  private buffer: Buffer = Buffer.alloc(0);
  private skip = 0;
  private waiting: (() => void) | undefined;
  private closed = false;

  constructor(readonly socket: TLSSocket) {
    socket.on("data", (d: Buffer) => {
      // Body bytes being skipped are counted, never copied (a 10 MB body arrives in ~640 reads).
      if (this.skip > 0) {
        const n = Math.min(this.skip, d.length);
        this.skip -= n;
        d = d.subarray(n);
      }
      if (d.length) this.buffer = this.buffer.length ? Buffer.concat([this.buffer, d]) : d;
      this.waiting?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on("error", () => undefined);
  }

  private async more(): Promise<void> {
    if (this.closed) throw new Error("connection closed");
    await new Promise<void>((r) => (this.waiting = r));
    this.waiting = undefined;
  }

  /** Sends a request and reads the whole response; returns the body's length. */
  async request(method: string, path: string, headers: string, body?: Buffer): Promise<number> {
    const length = body ? `content-length: ${body.length}\r\n` : "";
    this.socket.write(
      `${method} ${path} HTTP/1.1\r\nhost: ${HOST}:${upstreamPort}\r\n${headers}${length}\r\n`,
    );
    if (body)
      for (let at = 0; at < body.length; at += 1 << 16) {
        if (!this.socket.write(body.subarray(at, at + (1 << 16))))
          await new Promise((r) => this.socket.once("drain", r));
      }
    let end: number;
    while ((end = this.buffer.indexOf("\r\n\r\n")) < 0) await this.more();
    const head = this.buffer.subarray(0, end).toString("latin1");
    this.buffer = this.buffer.subarray(end + 4);
    const status = Number(head.slice(9, 12));
    if (status !== 200) throw new Error(`status ${status}: ${head.split("\r\n")[0]}`);
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (cl) {
      const n = Number(cl[1]);
      const have = Math.min(n, this.buffer.length);
      this.buffer = this.buffer.subarray(have);
      this.skip = n - have;
      while (this.skip > 0) await this.more();
      return n;
    }
    if (!/\r\ntransfer-encoding:\s*chunked/i.test(head)) throw new Error("no length");
    let total = 0;
    for (;;) {
      let eol: number;
      while ((eol = this.buffer.indexOf("\r\n")) < 0) await this.more();
      const size = parseInt(this.buffer.subarray(0, eol).toString("latin1"), 16);
      while (this.buffer.length < eol + 2 + size + 2) await this.more();
      this.buffer = this.buffer.subarray(eol + 2 + size + 2);
      total += size;
      if (size === 0) return total;
    }
  }
}

let upstreamPort = 0;

async function open(target: Target): Promise<Connection> {
  let socket: Socket | undefined;
  if (target.proxy !== undefined) {
    socket = netConnect(target.proxy, "127.0.0.1");
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      let reply = "";
      const onData = (d: Buffer) => {
        reply += d.toString("latin1");
        if (!reply.includes("\r\n\r\n")) return;
        socket?.off("data", onData);
        if (/^HTTP\/1\.[01] 200/.test(reply)) resolve();
        else reject(new Error(`CONNECT refused: ${reply.split("\r\n")[0]}`));
      };
      socket?.on("data", onData);
      socket?.on("error", reject);
      socket?.write(
        `CONNECT ${HOST}:${upstreamPort} HTTP/1.1\r\nhost: ${HOST}:${upstreamPort}\r\n\r\n`,
      );
    });
  }
  const tls = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect(
      {
        ...(socket ? { socket } : { host: "127.0.0.1", port: upstreamPort }),
        servername: HOST,
        ca: target.ca,
        ALPNProtocols: ["http/1.1"],
      },
      () => resolve(s),
    );
    s.on("error", reject);
  });
  tls.setNoDelay(true);
  return new Connection(tls);
}

// --- scenarios ---------------------------------------------------------------------------

const AUTH = process.env["BENCH_NOAUTH"]
  ? "x-api-key: none\r\n"
  : "x-api-key: sk-ant-api03-placeholderplaceholderplaceholder0000\r\n";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

interface Rate {
  rps: number;
  p50: number;
  p99: number;
}

async function keepAlive(target: Target, connections: number): Promise<Rate> {
  const conns = await Promise.all(Array.from({ length: connections }, () => open(target)));
  for (const c of conns) await c.request("GET", "/small", AUTH); // warm
  const latencies: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    conns.map(async (c) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        await c.request("GET", "/small", AUTH);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  for (const c of conns) c.socket.destroy();
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
  };
}

async function newConnections(target: Target): Promise<Rate> {
  const latencies: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  while (performance.now() < deadline) {
    const t = performance.now();
    const c = await open(target);
    await c.request("GET", "/small", AUTH + "connection: close\r\n");
    c.socket.destroy();
    latencies.push(performance.now() - t);
  }
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
  };
}

async function transfer(target: Target, direction: "down" | "up"): Promise<number> {
  const c = await open(target);
  const body = Buffer.alloc(BIG, 0x62);
  const rates: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t = performance.now();
    if (direction === "down") await c.request("GET", `/bytes/${BIG}`, AUTH);
    else
      await c.request("POST", "/upload", AUTH + "content-type: application/octet-stream\r\n", body);
    if (i > 0) rates.push(BIG / 1e6 / ((performance.now() - t) / 1000));
  }
  c.socket.destroy();
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)] ?? NaN;
}

// --- processes ---------------------------------------------------------------------------

async function rssMb(pid: number | undefined, field: "VmRSS" | "VmHWM"): Promise<number> {
  if (pid === undefined) return NaN;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(port, "127.0.0.1", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/**
 * The executable `name` on PATH, or undefined. Looked up here rather than through a shell: the
 * shells disagree on how `command -v` reports a missing program (dash exits 127, bash 1).
 */
async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    if (
      await access(file, fsConstants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return file;
  }
  return undefined;
}

async function ensureMitmdump(): Promise<string> {
  const found = await onPath("mitmdump");
  if (found) return found;
  process.stderr.write("installing Debian's mitmproxy for the comparison…\n");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    run("apt-get", ["install", "-y", "--no-install-recommends", "mitmproxy"], {
      env,
      timeoutMs: 15 * 60_000,
    });
  // Package lists that are missing or stale make the install fail: refresh them once and retry.
  await install().catch(async () => {
    await run("apt-get", ["update"], { env, timeoutMs: 5 * 60_000 });
    await install();
  });
  const installed = await onPath("mitmdump");
  if (!installed) throw new Error("mitmproxy was installed but mitmdump is not on PATH");
  return installed;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bot-bottle-bench-egress-"));
  const children: ChildProcess[] = [];
  try {
    await Promise.all([
      createCa(join(dir, "upstream"), "upstream"),
      createCa(join(dir, "bottle"), "bench"),
    ]);
    const upstreamCaCert = await readFile(join(dir, "upstream", "ca.crt"), "utf8");
    const upstreamCa = new CertificateAuthority(
      upstreamCaCert,
      await readFile(join(dir, "upstream", "ca.key"), "utf8"),
    );
    await writeFile(join(dir, "leaf.key"), upstreamCa.leafKey);
    await writeFile(join(dir, "leaf.crt"), upstreamCa.mint(HOST));

    const upstream = spawn(
      process.execPath,
      [
        join(PACKAGE_ROOT, "bench", "egress-upstream.mjs"),
        join(dir, "leaf.key"),
        join(dir, "leaf.crt"),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    children.push(upstream);
    upstreamPort = await new Promise<number>((resolve) =>
      upstream.stdout?.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))),
    );

    // bot-bottle's egress daemon, configured as a bottle would configure it.
    const token = "sk-ant-api03-" + "R".repeat(40) + "bench0000000000000000000000";
    const config: EgressConfig = {
      slug: "bench",
      generation: 1,
      secretEnv: ["BENCH_TOKEN"],
      routes: [
        {
          host: HOST,
          port: upstreamPort,
          tlsPassthrough: false,
          allowIpLiteral: false,
          ...(process.env["BENCH_NOAUTH"]
            ? {}
            : { auth: { header: "x-api-key", tokenEnv: "BENCH_TOKEN" } }),
        },
      ],
      extraHosts: { [HOST]: "127.0.0.1" },
      trustCaFile: join(dir, "upstream", "ca.crt"),
    };
    await writeFile(join(dir, "egress.json"), JSON.stringify(config));
    const egressPort = await freePort();
    const egress = spawn(
      process.execPath,
      [
        // BENCH_PROFILE=DIR writes a CPU profile of the egress daemon there; BENCH_NODE_FLAGS adds
        // node flags to it (e.g. "--perf-basic-prof" for `perf record -p`).
        ...(process.env["BENCH_PROFILE"]
          ? ["--cpu-prof", "--cpu-prof-dir", process.env["BENCH_PROFILE"]]
          : []),
        ...(process.env["BENCH_NODE_FLAGS"]?.split(" ").filter(Boolean) ?? []),
        join(PACKAGE_ROOT, "dist", "bundle", "sidecars", "egress", "main.js"),
        "--port",
        String(egressPort),
        "--config",
        join(dir, "egress.json"),
        "--audit-dir",
        join(dir, "audit"),
        "--ca-cert",
        join(dir, "bottle", "ca.crt"),
      ],
      {
        stdio: ["ignore", "ignore", "inherit"],
        env: {
          ...process.env,
          BOT_BOTTLE_CA_KEY: await readFile(join(dir, "bottle", "ca.key"), "utf8"),
          BENCH_TOKEN: token,
        },
      },
    );
    children.push(egress);

    const mitmdump = await ensureMitmdump();
    const mitmPort = await freePort();
    const confdir = join(dir, "mitm");
    const mitm = spawn(
      mitmdump,
      [
        "-q",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        String(mitmPort),
        "--set",
        `confdir=${confdir}`,
        "--set",
        `ssl_verify_upstream_trusted_ca=${join(dir, "upstream", "ca.crt")}`,
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    children.push(mitm);

    await waitFor(() => accepts(egressPort), "bot-bottle egress");
    await waitFor(
      async () => existsSync(join(confdir, "mitmproxy-ca-cert.pem")) && (await accepts(mitmPort)),
      "mitmdump",
    );

    const targets: Target[] = [
      { name: "direct", ca: upstreamCaCert },
      {
        name: "bot-bottle egress",
        proxy: egressPort,
        ca: await readFile(join(dir, "bottle", "ca.crt"), "utf8"),
        ...(egress.pid ? { pid: egress.pid } : {}),
      },
      {
        name: "mitmdump",
        proxy: mitmPort,
        ca: await readFile(join(confdir, "mitmproxy-ca-cert.pem"), "utf8"),
        ...(mitm.pid ? { pid: mitm.pid } : {}),
      },
    ];

    const rows: Record<string, Record<string, number>> = {};
    // BENCH_TARGETS=direct,egress,mitmdump and BENCH_SCENARIOS=ka1,ka16,fresh,down,up narrow a
    // run (for profiling one path); the default measures everything.
    const only = (name: string, list: string | undefined) =>
      !list || list.split(",").some((x) => name.includes(x));
    const scenario = <T>(name: string, fn: () => Promise<T>, none: T) =>
      only(name, process.env["BENCH_SCENARIOS"]) ? fn() : Promise.resolve(none);
    const empty: Rate = { rps: NaN, p50: NaN, p99: NaN };
    for (const target of targets.filter((t) => only(t.name, process.env["BENCH_TARGETS"]))) {
      await (await open(target)).request("GET", "/small", AUTH); // warm
      const idle = await rssMb(target.pid, "VmRSS");
      const ka1 = await scenario("ka1", () => keepAlive(target, 1), empty);
      const ka16 = await scenario("ka16", () => keepAlive(target, 16), empty);
      const fresh = await scenario("fresh", () => newConnections(target), empty);
      const down = await scenario("down", () => transfer(target, "down"), NaN);
      const up = await scenario("up", () => transfer(target, "up"), NaN);
      rows[target.name] = {
        ka1: ka1.rps,
        ka1p50: ka1.p50,
        ka1p99: ka1.p99,
        ka16: ka16.rps,
        ka16p50: ka16.p50,
        ka16p99: ka16.p99,
        fresh: fresh.rps,
        freshp50: fresh.p50,
        freshp99: fresh.p99,
        down,
        up,
        idle,
        peak: await rssMb(target.pid, "VmHWM"),
      };
      process.stderr.write(`measured ${target.name}\n`);
    }

    const mitmVersion = (
      await run(mitmdump, ["--version"]).catch(() => ({ stdout: "?" }))
    ).stdout.split("\n")[0];
    const cpu = cpus()[0]?.model ?? "unknown";
    const f = (n: number | undefined, digits = 0) =>
      n === undefined || Number.isNaN(n) ? "—" : n.toFixed(digits);
    const lines = [
      `bench/egress — ${cpus().length} cores (${cpu}), node ${process.version}, ${(mitmVersion ?? "").trim()}, ${SECONDS} s per scenario, loopback`,
      "",
      "| | direct | bot-bottle egress | mitmdump | egress / mitmdump |",
      "|---|---:|---:|---:|---:|",
    ];
    const d = rows["direct"] ?? {};
    const e = rows["bot-bottle egress"] ?? {};
    const m = rows["mitmdump"] ?? {};
    const row = (label: string, key: string, digits: number, ratio = true) =>
      lines.push(
        `| ${label} | ${f(d[key], digits)} | ${f(e[key], digits)} | ${f(m[key], digits)} | ${ratio ? `${f((e[key] ?? NaN) / (m[key] ?? NaN), 2)}×` : ""} |`,
      );
    row("keep-alive, 1 conn: req/s", "ka1", 0);
    row("  p50 ms", "ka1p50", 2, false);
    row("  p99 ms", "ka1p99", 2, false);
    row("keep-alive, 16 conns: req/s", "ka16", 0);
    row("  p50 ms", "ka16p50", 2, false);
    row("  p99 ms", "ka16p99", 2, false);
    row("new connection per request: req/s", "fresh", 0);
    row("  p50 ms", "freshp50", 2, false);
    row("  p99 ms", "freshp99", 2, false);
    row("10 MB download: MB/s", "down", 0);
    row("10 MB upload: MB/s", "up", 0);
    row("RSS idle: MB", "idle", 0, false);
    row("RSS peak under load: MB", "peak", 0, false);
    lines.push(
      "",
      `added p50 latency over direct, keep-alive 1 conn: ${f((e["ka1p50"] ?? NaN) - (d["ka1p50"] ?? NaN), 3)} ms (mitmdump ${f((m["ka1p50"] ?? NaN) - (d["ka1p50"] ?? NaN), 3)} ms)`,
    );
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench/egress failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});

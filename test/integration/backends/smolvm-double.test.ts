/**
 * The smolvm test double (test/fixtures/smolvm-double): the smolvm CLI's grammar, exit codes
 * and JSON, with each machine's guest a real Docker container, and smolvm's virtio-net gateway
 * emulated in the host kernel. Traffic goes only to loopback and to containers this test made.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

const BIN = join(import.meta.dirname, "..", "..", "fixtures", "smolvm-double", "bin");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program (argv, no shell); `input` is piped to stdin, `holdStdin` leaves it open. */
function runProgram(
  command: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer; holdStdin?: boolean } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
    child.stdin.on("error", () => {});
    if (opts.input !== undefined) child.stdin.write(opts.input);
    if (!opts.holdStdin) child.stdin.end();
  });
}

async function sh(command: string, args: readonly string[]): Promise<string> {
  const r = await runProgram(command, args);
  assert.equal(r.code, 0, `${command} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

const dirA = mkdtempSync(join(tmpdir(), "smolvm-double-a-"));
const dirB = mkdtempSync(join(tmpdir(), "smolvm-double-b-"));
const work = mkdtempSync(join(tmpdir(), "smolvm-double-work-"));

function envFor(dataDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${BIN}:${process.env.PATH ?? ""}`,
    SMOLVM_DATA_DIR: dataDir,
    ...extra,
  };
}

/** `smolvm ARGS` against data dir A (or `dataDir`). */
function smolvm(
  args: readonly string[],
  opts: {
    dataDir?: string;
    env?: NodeJS.ProcessEnv;
    input?: string | Buffer;
    holdStdin?: boolean;
  } = {},
): Promise<Result> {
  return runProgram("smolvm", args, {
    env: envFor(opts.dataDir ?? dirA, opts.env),
    input: opts.input,
    holdStdin: opts.holdStdin,
  });
}

async function ok(args: readonly string[], opts: Parameters<typeof smolvm>[1] = {}) {
  const r = await smolvm(args, opts);
  assert.equal(r.code, 0, `smolvm ${args.join(" ")}: ${r.stderr}`);
  return r;
}

async function refused(args: readonly string[], pattern: RegExp, env?: NodeJS.ProcessEnv) {
  const r = await smolvm(args, { env });
  assert.equal(r.code, 1, `smolvm ${args.join(" ")} must fail: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^Error: /, `smolvm ${args.join(" ")}`);
  assert.match(r.stderr, pattern, `smolvm ${args.join(" ")}`);
}

/** exec -- CMD in machine `name`, transport drop already taken. */
function exec(name: string, cmd: string[], opts: Parameters<typeof smolvm>[1] = {}) {
  return smolvm(["machine", "exec", "--name", name, "--", ...cmd], opts);
}

/** From the guest: a TCP connect to HOST:PORT and its first line; "rc=N" last (124: timeout). */
async function probe(name: string, host: string, port: number): Promise<string> {
  const r = await smolvm([
    "machine",
    "exec",
    "--name",
    name,
    "-e",
    `H=${host}`,
    "-e",
    `P=${port}`,
    "--",
    "bash",
    "-c",
    'timeout 2 bash -c \'exec 3<>"/dev/tcp/$H/$P" && head -n1 <&3\' 2>&1; echo "rc=$?"',
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** Whether a process runs (a zombie left for an init that reaps late does not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function statusOf(name: string, dataDir = dirA): Promise<any> {
  const r = await ok(["machine", "status", "--name", name, "--json"], { dataDir });
  return JSON.parse(r.stdout);
}

function listen(host: string, greeting: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.end(`${greeting}\n`));
  return new Promise((resolve) =>
    server.listen(0, host, () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    ),
  );
}

/** A host address other than loopback (the bridge's or the uplink's). */
function otherHostAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === "IPv4" && !a.internal && !a.address.startsWith("100.96.")) return a.address;
    }
  }
  throw new Error("no non-loopback IPv4 address on this host");
}

const BASES = ["bot-bottle/base:trixie", "bot-bottle/shell:latest"];
const guestTag = `smolvm-double-test-guest:${process.pid}`;
let guestId = "";
const archive = join(work, "guest.tar");
const servers: Server[] = [];
const STATUS_KEYS = [
  "allow_hosts",
  "allowed_cidrs",
  "cpus",
  "created_at",
  "image",
  "labels",
  "memory_mib",
  "mounts",
  "name",
  "network",
  "network_backend",
  "pid",
  "ports",
  "smolvm_double",
  "state",
];

describe("the smolvm test double", { timeout: 5 * 60_000 }, () => {
  let loop = { port: 0 }; // host 127.0.0.1 only
  let any = { port: 0 }; // host 0.0.0.0
  let onlyOther = { port: 0 }; // host's other address only
  let otherIp = "";
  const shared = join(work, "shared");
  const sharedLink = join(work, "shared-link");

  before(async () => {
    const images = await sh("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    const base = BASES.find((b) => images.split("\n").includes(b));
    assert.ok(base, `one of ${BASES.join(", ")} must exist (bot-bottle images base)`);
    // A guest image with a USER of its own, saved to an archive and then removed from the
    // engine, so the first start loads it as smolvm pulls an archive.
    const build = await runProgram("docker", ["build", "-q", "-t", guestTag, "-"], {
      input: `FROM ${base}\nLABEL dev.bot-bottle.test=1\nUSER 65534:65534\n`,
    });
    assert.equal(build.code, 0, build.stderr);
    guestId = (await sh("docker", ["image", "inspect", "-f", "{{.Id}}", guestTag])).trim();
    await sh("docker", ["save", "-o", archive, guestTag]);
    await sh("docker", ["rmi", guestTag]);

    mkdirSync(shared);
    writeFileSync(join(shared, "from-host.txt"), "shared-content\n");
    symlinkSync(shared, sharedLink);
    const a = await listen("127.0.0.1", "hello-from-loopback");
    const b = await listen("0.0.0.0", "hello-from-any");
    otherIp = otherHostAddress();
    const c = await listen(otherIp, "hello-from-other");
    servers.push(a.server, b.server, c.server);
    loop = a;
    any = b;
    onlyOther = c;
  });

  after(async () => {
    for (const s of servers) s.close();
    for (const dir of [dirA, dirB]) {
      await runProgram(join(BIN, "smolvm-double-cleanup"), [], { env: envFor(dir) });
    }
    if (guestId) await runProgram("docker", ["rmi", "-f", guestId]);
    for (const d of [dirA, dirB, work]) rmSync(d, { recursive: true, force: true });
  });

  test("reports smolvm's version, or the newer one it is asked to emulate", async () => {
    assert.equal((await ok(["--version"])).stdout, "smolvm 1.9.3\n");
    const newer = await ok(["--version"], { env: { SMOLVM_DOUBLE_VERSION: "1.14.0" } });
    assert.equal(newer.stdout, "smolvm 1.14.0\n");
  });

  test("lists no machines as an empty JSON array", async () => {
    assert.equal((await ok(["machine", "ls", "--json"])).stdout.trim(), "[]");
  });

  test("refuses what smolvm refuses, with Error: on stderr and exit 1", async () => {
    const img = ["--image", archive];
    await ok(["machine", "create", "--name", "dup", ...img]);
    const notArchive = join(work, "not-an-archive.tar");
    writeFileSync(notArchive, "plain text, not a tar");
    const aFile = join(work, "a-file");
    writeFileSync(aFile, "x");

    const create = (...args: string[]) => ["machine", "create", ...args];
    await refused(create("-n", "short", ...img), /unexpected argument '-n'/);
    await refused(create(...img), /--name/);
    await refused(create("--name", "a--b", ...img), /invalid machine name/);
    await refused(create("--name", "_lead", ...img), /invalid machine name/);
    await refused(create("--name", "dot.name", ...img), /invalid machine name/);
    await refused(create("--name", "a".repeat(129), ...img), /128/);
    await refused(create("--name", "dup", ...img), /already exists/);
    for (const policy of [
      ["--allow-cidr", "100.96.0.1/32"],
      ["--allow-host", "example.com"],
      ["-p", "8080:80"],
      ["--outbound-localhost-only"],
    ]) {
      await refused(
        create("--name", "tsi", ...img, "--net", "--net-backend", "tsi", ...policy),
        /tsi cannot be combined/,
      );
    }
    await refused(create("--name", "m", ...img, "-v", `${work}/missing:/x`), /does not exist/);
    await refused(create("--name", "m", ...img, "-v", `${aFile}:/x`), /not a directory/);
    await refused(create("--name", "m", ...img, "--bogus"), /unexpected argument '--bogus'/);
    await refused(create("--name", "m", "--image", `${work}/none.tar`), /does not exist/);
    await refused(create("--name", "m", "--image", notArchive), /not a `docker save` archive/);
    await refused(create("--name", "m", ...img, "--allow-cidr", "nonsense"), /not a CIDR/);
    await refused(["machine", "status", "--name", "nosuch"], /machine 'nosuch' not found/);
    await refused(["machine", "start", "--name", "nosuch"], /not found/);
    await refused(["machine", "stop", "--name", "nosuch"], /not found/);
    await refused(["machine", "exec", "--name", "nosuch", "--", "true"], /not found/);
    await refused(["machine", "exec", "--name", "dup", "--", "true"], /is not running/);
    await refused(["machine", "delete", "--name", "dup"], /pass -f/);
    await refused(["machine", "exec", "--name", "dup", "-u", "0", "--", "id"], /'-u'/);
    await refused(
      ["machine", "start", "--name", "dup", "--egress-interceptor", "127.0.0.1:1"],
      /unexpected argument '--egress-interceptor'/,
    );
    await refused(["machine", "frobnicate"], /unrecognized subcommand/);

    const names = JSON.parse((await ok(["machine", "ls", "--json"])).stdout).map(
      (m: { name: string }) => m.name,
    );
    assert.deepEqual(names, ["dup"], "no refusal left a machine behind");
    await ok(["machine", "delete", "--name", "dup", "-f"]);
  });

  test("create records a machine and runs nothing; status and ls report it", async () => {
    const r = await ok([
      "machine",
      "create",
      "--name",
      "gw",
      "--image",
      archive,
      "--cpus",
      "2",
      "--mem",
      "512",
      "-v",
      `${sharedLink}:/shared:ro`,
      "-e",
      "GREETING=hi there",
      "--allow-cidr",
      "100.96.0.1/32",
      "--label",
      "dev.bot-bottle.bottle=b1",
      "--label",
      "role=agent",
    ]);
    assert.match(r.stdout, /^Created machine: gw$/m);
    const s = await statusOf("gw");
    assert.deepEqual(Object.keys(s).sort(), STATUS_KEYS);
    assert.equal(s.name, "gw");
    assert.equal(s.state, "created");
    assert.equal(s.cpus, 2);
    assert.equal(s.memory_mib, 512);
    assert.equal(s.pid, null);
    assert.equal(s.mounts, 1);
    assert.equal(s.ports, 0);
    assert.equal(s.image, realpathSync(archive));
    assert.equal(s.network, true);
    assert.equal(s.network_backend, "virtio-net");
    assert.deepEqual(s.allowed_cidrs, ["100.96.0.1/32"]);
    assert.deepEqual(s.labels, { "dev.bot-bottle.bottle": "b1", role: "agent" });
    assert.ok(Number.isInteger(s.created_at) && Math.abs(s.created_at - Date.now() / 1000) < 60);
    assert.equal(s.smolvm_double.container_id, null, "create starts no container");
    assert.equal(s.smolvm_double.gateway_allowed, true);
    const docker = await sh("docker", [
      "ps",
      "-a",
      "-q",
      "--filter",
      `name=${s.smolvm_double.container_name}`,
    ]);
    assert.equal(docker.trim(), "");
    const all = JSON.parse((await ok(["machine", "ls", "--json"])).stdout);
    assert.deepEqual(all, [s]);
  });

  test("start loads the archive and runs the guest as a labelled container; again is a no-op", async () => {
    const r = await ok(["machine", "start", "--name", "gw"]);
    assert.match(r.stdout, /Machine 'gw' running \(PID: \d+\)/);
    const s = await statusOf("gw");
    assert.equal(s.state, "running");
    assert.ok(s.pid > 0);
    assert.ok(s.smolvm_double.bridge.length <= 15);
    const inspected = JSON.parse(await sh("docker", ["inspect", s.smolvm_double.container_id]))[0];
    assert.equal(inspected.State.Running, true);
    assert.equal(inspected.Image, guestId, "the image came from the archive");
    assert.equal(
      inspected.Config.Labels["dev.bot-bottle.smolvm-double.data-dir"],
      realpathSync(dirA),
    );
    assert.equal(inspected.Config.Labels["dev.bot-bottle.test"], "1");
    assert.equal(inspected.Config.User, "65534:65534", "the image's USER is kept");
    assert.equal(inspected.HostConfig.Mounts[0].Source, realpathSync(shared), "canonical path");
    assert.equal(inspected.HostConfig.Memory, 512 * 1024 * 1024);

    const again = await ok(["machine", "start", "--name", "gw"]);
    assert.match(again.stdout, /already running/);
    assert.equal((await statusOf("gw")).smolvm_double.container_id, s.smolvm_double.container_id);
  });

  test("the first exec after start drops with 137 'client disconnected'; the next one runs", async () => {
    const dropped = await exec("gw", ["sh", "-c", "echo should-not-run"]);
    assert.equal(dropped.code, 137);
    assert.match(dropped.stderr, /client disconnected\n$/);
    assert.equal(dropped.stdout, "");
    const next = await exec("gw", ["true"]);
    assert.equal(next.code, 0, next.stderr);
  });

  test("exec passes the guest's exit code, streams, env, workdir and image user through", async () => {
    const r = await exec("gw", ["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert.deepEqual(r, { code: 7, stdout: "out\n", stderr: "err\n" });
    const killed = await exec("gw", ["sh", "-c", "kill -TERM $$"]);
    assert.equal(killed.code, 143, "128+N for a signal");
    const missing = await exec("gw", ["no-such-program"]);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /executable file not found/);
    assert.equal(missing.stdout, "");
    const env = await smolvm([
      "machine",
      "exec",
      "--name",
      "gw",
      "-e",
      "EXTRA=x=y",
      "-w",
      "/shared",
      "--",
      "sh",
      "-c",
      'echo "$GREETING|$EXTRA|$(pwd)|$(id -u)|$(cat from-host.txt)"',
    ]);
    assert.equal(env.stdout, "hi there|x=y|/shared|65534|shared-content\n", env.stderr);
    const ro = await exec("gw", ["sh", "-c", "echo x > /shared/new"]);
    assert.notEqual(ro.code, 0, "a :ro mount is read-only");
  });

  test("exec -u runs as another user only on smolvm ≥ 1.14", async () => {
    const newer = { SMOLVM_DOUBLE_VERSION: "1.14.0" };
    const r = await smolvm(["machine", "exec", "--name", "gw", "-u", "0", "--", "id", "-u"], {
      env: newer,
    });
    assert.deepEqual(r, { code: 0, stdout: "0\n", stderr: "" });
  });

  test("exec --timeout kills the command and exits 124", async () => {
    const started = Date.now();
    const r = await smolvm([
      "machine",
      "exec",
      "--name",
      "gw",
      "--timeout",
      "1s",
      "--",
      "sleep",
      "77",
    ]);
    assert.equal(r.code, 124, r.stderr);
    assert.ok(Date.now() - started < 5_000);
    const s = await statusOf("gw");
    const top = await sh("docker", ["top", s.smolvm_double.container_id]);
    assert.doesNotMatch(top, /sleep 77/, "the timed-out command is gone from the guest");
  });

  test("exec caps buffered output at 11 MiB per stream unless --stream", async () => {
    const big = ["sh", "-c", "head -c 12582912 /dev/zero; head -c 100 /dev/zero >&2"];
    const buffered = await exec("gw", big);
    assert.equal(buffered.code, 0);
    assert.equal(buffered.stdout.length, 11 * 1024 * 1024);
    assert.equal(buffered.stderr.length, 100);
    const streamed = await smolvm(["machine", "exec", "--name", "gw", "--stream", "--", ...big]);
    assert.equal(streamed.stdout.length, 12 * 1024 * 1024);
  });

  test("exec passes piped stdin to the command, and ends with it held open", async () => {
    const r = await exec("gw", ["cat"], { input: "line one\nline two\n" });
    assert.deepEqual(r, { code: 0, stdout: "line one\nline two\n", stderr: "" });
    const mib = await exec("gw", ["wc", "-c"], { input: Buffer.alloc(1024 * 1024, 1) });
    assert.equal(mib.stdout.trim(), "1048576");
    const held = await exec("gw", ["echo", "done"], { holdStdin: true });
    assert.deepEqual(held, { code: 0, stdout: "done\n", stderr: "" });
  });

  test("the console log records each exec command line with its -e values", async () => {
    await smolvm(["machine", "exec", "--name", "gw", "-e", "TOKEN=sk-visible-123", "--", "true"]);
    const log = readFileSync(join(dirA, "machines", "gw", "console.log"), "utf8");
    assert.match(log, /env: TOKEN=sk-visible-123 cmd: true$/m);
    assert.match(log, /cmd: sh -c echo should-not-run$/m, "the dropped exec is logged too");
  });

  test("cp writes one file atomically with mode and owner, and copies one back", async () => {
    const src = join(work, "in.txt");
    writeFileSync(src, "first\n");
    await ok([
      "machine",
      "cp",
      src,
      "gw:/tmp/in.txt",
      "--mode",
      "0600",
      "--uid",
      "1234",
      "--gid",
      "2345",
    ]);
    const first = await exec("gw", ["stat", "-c", "%a %u %g %i", "/tmp/in.txt"]);
    const [mode, uid, gid, inode] = first.stdout.trim().split(" ");
    assert.deepEqual([mode, uid, gid], ["600", "1234", "2345"]);
    writeFileSync(src, "second\n");
    await ok(["machine", "cp", src, "gw:/tmp/in.txt", "--mode", "0644"]);
    const second = await exec("gw", [
      "sh",
      "-c",
      "stat -c %i /tmp/in.txt; cat /tmp/in.txt; ls -a /tmp",
    ]);
    const [inode2, content, ...entries] = second.stdout.trim().split("\n");
    assert.notEqual(inode2, inode, "replaced by a rename, not rewritten in place");
    assert.equal(content, "second");
    assert.ok(!entries.some((e) => e.startsWith(".smolvm-cp")), "no temporary file is left");

    const back = join(work, "back.txt");
    await ok(["machine", "cp", "gw:/tmp/in.txt", back]);
    assert.equal(readFileSync(back, "utf8"), "second\n");
    const dir = await smolvm(["machine", "cp", work, "gw:/tmp/dir"]);
    assert.equal(dir.code, 1);
    assert.match(dir.stderr, /^Error: .*is a directory/);
  });

  test("with 100.96.0.1/32 allowed, the guest reaches host loopback through the gateway only", async () => {
    // The allowed path first: the host's loopback server, by name and by the gateway address.
    assert.equal(await probe("gw", "host.smolvm.internal", loop.port), "hello-from-loopback\nrc=0");
    assert.equal(await probe("gw", "100.96.0.1", loop.port), "hello-from-loopback\nrc=0");
    assert.equal(await probe("gw", "100.96.0.1", any.port), "hello-from-any\nrc=0");
    // The same 0.0.0.0 server answers on the host's other address, from the host...
    const twin = await runProgram("bash", [
      "-c",
      `exec 3<>/dev/tcp/${otherIp}/${any.port}; head -n1 <&3`,
    ]);
    assert.equal(twin.stdout, "hello-from-any\n");
    // ...but not to the guest: only the DNAT to 127.0.0.1 passes, all else is dropped.
    assert.equal(await probe("gw", otherIp, any.port), "rc=124");
    assert.equal(await probe("gw", otherIp, onlyOther.port), "rc=124");
    const s = await statusOf("gw");
    const ownGateway = s.smolvm_double.subnet.replace(/0\/24$/, "1");
    assert.equal(await probe("gw", ownGateway, loop.port), "rc=124");
    // A port nothing listens on at host loopback: the re-dial is refused.
    assert.match(await probe("gw", "100.96.0.1", onlyOther.port), /Connection refused\nrc=1$/);
  });

  test("from 1.14, --egress-interceptor gets every other admitted flow behind smolvm's preamble", async () => {
    const token = "ab".repeat(32);
    const seen: { magic: string; version: number; token: string; family: number; to: string }[] =
      [];
    const interceptor = createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on("data", function preamble(d: Buffer) {
        buf = Buffer.concat([buf, d]);
        if (buf.length < 48) return;
        s.off("data", preamble);
        const to = `${[...buf.subarray(44, 48)].join(".")}:${buf.readUInt16BE(42)}`;
        seen.push({
          magic: buf.subarray(0, 8).toString("latin1"),
          version: buf[8]!,
          token: buf.subarray(9, 41).toString("hex"),
          family: buf[41]!,
          to,
        });
        if (to.endsWith(":444"))
          s.end(Buffer.from([111])); // ECONNREFUSED
        else s.end(Buffer.concat([Buffer.from([0]), Buffer.from(`intercepted ${to}\n`)]));
      });
    });
    servers.push(interceptor);
    await new Promise<void>((r) => interceptor.listen(0, "127.0.0.1", r));
    const icPort = (interceptor.address() as { port: number }).port;
    const newer = { SMOLVM_DOUBLE_VERSION: "1.14.0", SMOLVM_DOUBLE_DROP: "0" };
    const withToken = { ...newer, SMOLVM_INTERCEPTOR_TOKEN: token };
    await ok([
      "machine",
      "create",
      "--name",
      "icpt",
      "--image",
      archive,
      "--allow-cidr",
      "100.96.0.1/32",
      "--allow-cidr",
      "192.0.2.0/24",
    ]);
    const startArgs = ["machine", "start", "--name", "icpt", "--egress-interceptor"];
    await refused([...startArgs, `127.0.0.1:${icPort}`], /SMOLVM_INTERCEPTOR_TOKEN/, newer);
    await refused([...startArgs, `0.0.0.0:${icPort}`], /127\.0\.0\.1:PORT/, withToken);
    await ok([...startArgs, `127.0.0.1:${icPort}`], { env: withToken });
    assert.equal((await statusOf("icpt")).smolvm_double.egress_interceptor, `127.0.0.1:${icPort}`);

    assert.equal(await probe("icpt", "192.0.2.10", 443), "intercepted 192.0.2.10:443\nrc=0");
    assert.deepEqual(seen, [
      { magic: "SMOLICPT", version: 1, token, family: 4, to: "192.0.2.10:443" },
    ]);
    assert.equal(
      await probe("icpt", "host.smolvm.internal", loop.port),
      "hello-from-loopback\nrc=0",
    );
    assert.equal(await probe("icpt", "198.51.100.1", 443), "rc=124", "not admitted: dropped");
    assert.match(await probe("icpt", "192.0.2.10", 444), /reset by peer\nrc=1$/);
    assert.equal(seen.length, 2, "the interceptor saw only admitted flows");

    const relay = JSON.parse(readFileSync(join(dirA, "machines", "icpt", "machine.json"), "utf8"))
      .relay as { pid: number };
    await ok(["machine", "delete", "--name", "icpt", "-f"]);
    assert.ok(!running(relay.pid), "the relay is gone");
  });

  test("without the gateway in the allow-list, or without --net, the host is unreachable", async () => {
    await ok([
      "machine",
      "create",
      "--name",
      "closed",
      "--image",
      archive,
      "--allow-cidr",
      "192.0.2.0/24",
    ]);
    await ok(["machine", "create", "--name", "offline", "--image", archive]);
    await ok(["machine", "start", "--name", "closed"]);
    await ok(["machine", "start", "--name", "offline"], { env: { SMOLVM_DOUBLE_DROP: "0" } });
    await exec("closed", ["true"]); // the transport drop
    assert.equal(await probe("closed", "host.smolvm.internal", loop.port), "rc=124");
    assert.equal(await probe("closed", "100.96.0.1", any.port), "rc=124");
    assert.match(await probe("offline", "100.96.0.1", loop.port), /Network is unreachable\nrc=1$/);
    const offline = await statusOf("offline");
    assert.equal(offline.network, false);
    assert.equal(offline.network_backend, null);
  });

  test("a second data dir keeps machines of the same name apart", async () => {
    await ok(["machine", "create", "--name", "offline", "--image", archive], { dataDir: dirB });
    await ok(["machine", "start", "--name", "offline"], { dataDir: dirB });
    const a = await statusOf("offline");
    const b = await statusOf("offline", dirB);
    assert.equal(b.state, "running");
    assert.notEqual(a.smolvm_double.container_id, b.smolvm_double.container_id);
    const inB = JSON.parse((await ok(["machine", "ls", "--json"], { dataDir: dirB })).stdout);
    assert.deepEqual(
      inB.map((m: { name: string }) => m.name),
      ["offline"],
    );
    await ok(["machine", "delete", "--name", "offline", "-f"], { dataDir: dirB });
    assert.equal((await statusOf("offline")).state, "running", "dir A's twin is untouched");
  });

  test("a guest that dies is reported failed", async () => {
    const s = await statusOf("offline");
    await sh("docker", ["kill", s.smolvm_double.container_id]);
    assert.equal((await statusOf("offline")).state, "failed");
  });

  test("stop takes the network down; start brings it back and drops the first exec again", async () => {
    const before = await statusOf("gw");
    const bridge: string = before.smolvm_double.bridge;
    await ok(["machine", "stop", "--name", "gw"]);
    const stopped = await statusOf("gw");
    assert.equal(stopped.state, "stopped");
    assert.equal(stopped.pid, null);
    assert.doesNotMatch(await sh("iptables", ["-S"]), new RegExp(bridge));
    assert.doesNotMatch(await sh("iptables", ["-t", "nat", "-S"]), new RegExp(bridge));
    assert.equal(
      (
        await sh("docker", [
          "network",
          "ls",
          "-q",
          "--filter",
          `name=${before.smolvm_double.docker_network}`,
        ])
      ).trim(),
      "",
    );
    await refused(["machine", "exec", "--name", "gw", "--", "true"], /is not running/);

    await ok(["machine", "start", "--name", "gw"]);
    const dropped = await exec("gw", ["true"]);
    assert.equal(dropped.code, 137);
    assert.equal(await probe("gw", "host.smolvm.internal", loop.port), "hello-from-loopback\nrc=0");
    const kept = await exec("gw", ["cat", "/tmp/in.txt"]);
    assert.equal(kept.stdout, "second\n", "the guest's disk survives stop and start");
  });

  test("delete -f leaves no container, network or iptables rule behind", async () => {
    const machines = JSON.parse((await ok(["machine", "ls", "--json"])).stdout) as {
      name: string;
      smolvm_double: { bridge: string | null };
    }[];
    assert.deepEqual(
      machines.map((m) => m.name),
      ["closed", "gw", "offline"],
    );
    const bridges = machines.flatMap((m) => m.smolvm_double.bridge ?? []);
    assert.equal(bridges.length, 2);
    for (const m of machines) {
      const r = await ok(["machine", "delete", "--name", m.name, "-f"]);
      assert.match(r.stdout, new RegExp(`Deleted machine: ${m.name}`));
    }
    assert.equal((await ok(["machine", "ls", "--json"])).stdout.trim(), "[]");
    const label = `label=dev.bot-bottle.smolvm-double.data-dir=${realpathSync(dirA)}`;
    assert.equal((await sh("docker", ["ps", "-aq", "--filter", label])).trim(), "");
    assert.equal((await sh("docker", ["network", "ls", "-q", "--filter", label])).trim(), "");
    const tag = `smolvm-double:${createHash("sha256").update(realpathSync(dirA)).digest("hex").slice(0, 8)}`;
    const rules = [
      await sh("iptables", ["-S"]),
      await sh("iptables", ["-t", "nat", "-S"]),
      await sh("ip6tables", ["-S"]),
    ].join("\n");
    assert.ok(!rules.includes(tag), "no rule of this data dir is left");
    for (const b of bridges) assert.ok(!rules.includes(b), `no rule for ${b}`);
    const links = await sh("ip", ["-o", "link"]);
    for (const b of bridges) assert.ok(!links.includes(b), `bridge ${b} is gone`);
  });
});

/**
 * The cage: from inside the agent, nothing but the sidecar bundle is reachable. Every attack
 * here has an allowed twin that proves the target really answers, so no case can pass merely
 * because nothing was listening.
 */
import assert from "node:assert/strict";
import { copyFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import { PACKAGE_ROOT } from "../../../src/package-root.js";
import { TestBottles } from "../../helpers/bottles.js";

const t = new TestBottles();
const agent = t.agent("caged");
const FIXTURES = join(PACKAGE_ROOT, "test", "fixtures");
const IMAGE = "bot-bottle/shell:latest";

let slug = "";
let internal = "";
let egressNet = "";
let bundle = "";

/** Runs a probe inside the agent; resolves to its exit status and line. */
async function fromAgent(...args: string[]): Promise<{ ok: boolean; line: string }> {
  const r = await t.cli(
    ["exec", slug, "--", "node", "/home/node/workspace/probe.mjs", ...args],
    30_000,
  );
  return { ok: r.code === 0, line: r.stdout.trim() };
}

// The network errors the cage gives, as the probe prints them. Packets to anything off the
// internal network go to a gateway address no one holds: no answer (the probe's 3 s timeout, or
// EHOSTUNREACH when the neighbour lookup gives up first). A "failure" with any other line — an
// empty one when `bot-bottle exec` itself failed — is not a refusal by the cage.
const NO_ANSWER = /^(timeout|EHOSTUNREACH)$/;
const NO_ANSWER_HTTP = /^(TimeoutError|EHOSTUNREACH)$/;

/** Asserts that a probe failed with the specific network error `expected`. */
function assertRefused(r: { ok: boolean; line: string }, expected: RegExp, what: string): void {
  assert.equal(r.ok, false, `${what} must fail: ${r.line}`);
  assert.match(r.line, expected, `${what}: the cage's own error, not some other failure`);
}

/** Runs the same probe in a throw-away container of the test's own. */
async function fromContainer(
  dockerArgs: string[],
  ...args: string[]
): Promise<{ ok: boolean; line: string }> {
  const r = await run(
    "docker",
    [
      "run",
      "--rm",
      "--label",
      "dev.bot-bottle.test=1",
      "-v",
      `${FIXTURES}:/fixtures:ro`,
      ...dockerArgs,
      IMAGE,
      "node",
      "/fixtures/probe.mjs",
      ...args,
    ],
    { okExitCodes: [0, 1] },
  );
  return { ok: r.exitCode === 0, line: r.stdout.trim() };
}

async function gateway(network: string): Promise<string> {
  const { stdout } = await run("docker", [
    "network",
    "inspect",
    "--format",
    "{{(index .IPAM.Config 0).Gateway}}\t{{(index .IPAM.Config 0).Subnet}}",
    network,
  ]);
  // Split before trimming: an empty Gateway leaves the line starting with the tab.
  const [gw = "", subnet = ""] = stdout
    .replace(/\n$/, "")
    .split("\t")
    .map((f) => f.trim());
  if (gw) return gw;
  // Some engines (e.g. Debian's dockerd 20.10 on its default bridge) leave Gateway empty: the
  // bridge then holds the subnet's first address.
  const octets = (subnet.split("/")[0] ?? "").split(".").map(Number);
  octets[3] = (octets[3] ?? 0) + 1;
  return octets.join(".");
}

describe("the cage around the agent", { timeout: 10 * 60_000 }, () => {
  let hostServer: Server;
  let hostPort = 0;

  before(async () => {
    await t.setup(TestBottles.shellManifest([agent]));
    await copyFile(join(FIXTURES, "probe.mjs"), join(t.workspace, "probe.mjs"));
    slug = await t.start(agent);
    internal = `bot-bottle-${slug}-internal`;
    egressNet = `bot-bottle-${slug}-egress`;
    bundle = `bot-bottle-${slug}-bundle`;
    hostServer = createServer((_q, r) => r.end("host-service\n"));
    await new Promise<void>((resolve) => hostServer.listen(0, "0.0.0.0", resolve));
    hostPort = (hostServer.address() as { port: number }).port;
  });
  after(async () => {
    hostServer?.close();
    await t.teardown();
  });

  test("reaches the bundle by name on the plan's port, and on no other", async () => {
    const proxied = await fromAgent("http", "http://egress:9099/");
    assert.ok(proxied.ok, proxied.line);
    assert.match(proxied.line, /^403 bot-bottle: /, "the egress daemon answers (and refuses)");
    for (const alias of ["git-gate", "supervise"])
      assert.ok((await fromAgent("dns", alias)).ok, alias);
    for (const port of ["9000", "22", "80"])
      assertRefused(
        await fromAgent("tcp", "egress", port),
        /^ECONNREFUSED$/,
        `bundle port ${port}`,
      );
  });

  test("cannot open a TCP connection to a server on the bundle's egress network", async () => {
    const server = await t.container([
      "--network",
      egressNet,
      IMAGE,
      "node",
      "-e",
      'require("http").createServer((q,r)=>r.end("egress-side\\n")).listen(8080)',
    ]);
    const ip = await t.ip(server, egressNet);
    const twin = await run("docker", [
      "exec",
      bundle,
      "node",
      "-e",
      `fetch("http://${ip}:8080").then(r=>r.text()).then(t=>process.stdout.write(t))`,
    ]);
    assert.equal(twin.stdout, "egress-side\n", "the bundle reaches it");
    assertRefused(await fromAgent("tcp", ip, "8080"), NO_ANSWER, "the egress-side server");
  });

  test("has no DNS path out", async () => {
    const net = await t.network([]);
    const dns = await t.container([
      "--network",
      net,
      "--user",
      "root",
      "-v",
      `${FIXTURES}:/fixtures:ro`,
      IMAGE,
      "node",
      "/fixtures/fake-dns.mjs",
      "probe.bot-bottle.test",
      "10.9.8.7",
    ]);
    const dnsIp = await t.ip(dns, net);
    const twin = await fromContainer(
      ["--network", net, "--dns", dnsIp],
      "dns",
      "probe.bot-bottle.test",
    );
    assert.deepEqual(
      twin,
      { ok: true, line: "10.9.8.7" },
      "a container with a DNS path resolves the name",
    );

    assert.ok((await fromAgent("dns", "egress")).ok, "the agent resolves its bundle");
    // The system resolver (Docker's, which forwards nothing for an internal network) never
    // answers an outside name; the probe gives up first, or the resolver says "try again".
    assertRefused(
      await fromAgent("dns", "probe.bot-bottle.test"),
      /^(timeout|EAI_AGAIN)$/,
      "a lookup through the system resolver",
    );
    assertRefused(
      await fromAgent("dns", "probe.bot-bottle.test", dnsIp),
      /^(ETIMEOUT|ECONNREFUSED)$/,
      "a query sent straight to the server",
    );
    // No one holds the gateway address: no answer, whether the resolver or the probe gives up
    // first (on a loaded machine, the probe's own deadline can come first).
    assertRefused(
      await fromAgent("dns", "probe.bot-bottle.test", await gateway(internal)),
      /^(ETIMEOUT|ECONNREFUSED|timeout)$/,
      "a query sent to the internal gateway address",
    );
  });

  test("cannot reach a service on the host's 0.0.0.0 by any of the host's addresses", async () => {
    const twin = await fromContainer([], "http", `http://${await gateway("bridge")}:${hostPort}/`);
    assert.deepEqual(
      twin,
      { ok: true, line: "200 host-service" },
      "an ordinary container reaches the host service",
    );

    const hostAddresses = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && a.family === "IPv4" && !a.internal)
      .map((a) => a!.address);
    const targets = new Set([
      await gateway(internal),
      await gateway(egressNet),
      await gateway("bridge"),
      ...hostAddresses,
    ]);
    assert.ok(targets.size >= 3);
    const results = await Promise.all(
      [...targets].map(async (ip) => ({ ip, ...(await fromAgent("tcp", ip, String(hostPort))) })),
    );
    for (const r of results) assertRefused(r, NO_ANSWER, `host address ${r.ip}`);
  });

  test("cannot reach the metadata address", async () => {
    const net = await t.network(["--subnet", "169.254.169.0/24"]);
    await t.container([
      "--network",
      net,
      "--ip",
      "169.254.169.254",
      IMAGE,
      "node",
      "-e",
      'require("http").createServer((q,r)=>r.end("metadata\\n")).listen(80)',
    ]);
    const twin = await fromContainer(["--network", net], "http", "http://169.254.169.254/");
    assert.deepEqual(
      twin,
      { ok: true, line: "200 metadata" },
      "the fake metadata server answers on its network",
    );
    assertRefused(
      await fromAgent("http", "http://169.254.169.254/"),
      NO_ANSWER_HTTP,
      "the metadata address",
    );
  });

  test("has no IPv6 at all", async () => {
    const twin = await fromContainer(
      [
        "--sysctl",
        "net.ipv6.conf.all.disable_ipv6=0",
        "--sysctl",
        "net.ipv6.conf.lo.disable_ipv6=0",
      ],
      "ipv6",
    );
    assert.deepEqual(
      twin,
      { ok: true, line: "connected" },
      "IPv6 works in a container that has it",
    );
    // No IPv6 address at all, not even on loopback: binding ::1 fails.
    assertRefused(await fromAgent("ipv6"), /^EADDRNOTAVAIL$/, "IPv6 on loopback");
    const addresses = await t.sh(slug, "cat /proc/net/if_inet6");
    assert.equal(addresses.stdout.trim(), "", "no IPv6 address on any interface");
  });
});

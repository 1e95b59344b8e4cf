import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  formatCidr,
  overlaps,
  parseCidr,
  type Subnet,
} from "../../../src/backends/address-pool.js";
import { run } from "../../../src/exec/run.js";
import { STACK_LINE } from "../../helpers/cli.js";
import { TestBottles } from "../../helpers/bottles.js";

const t = new TestBottles();
const agent = t.agent("many");
const BOTTLES = 20;
const AT_ONCE = 4;
// A pool of the test's own: a /22 holds 64 /28s, room for 32 bottles.
const POOL = "10.216.0.0/22";

/** Each network of these bottles: its name, bridge and subnet, from the engine. */
async function bottleNetworks(): Promise<{ name: string; subnet: Subnet; internal: boolean }[]> {
  const { stdout } = await run("docker", [
    "network",
    "ls",
    "--quiet",
    "--filter",
    `label=dev.bot-bottle.agent=${agent}`,
  ]);
  const ids = stdout.split("\n").filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = await run("docker", [
    "network",
    "inspect",
    "--format",
    "{{.Name}} {{.Internal}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
    ...ids,
  ]);
  return inspected.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [name = "", internal = "", subnet = ""] = line.split(" ");
      const s = parseCidr(subnet);
      assert.ok(s, `${name} has no IPv4 subnet of its own: "${subnet}"`);
      return { name, subnet: s, internal: internal === "true" };
    });
}

describe(
  `${BOTTLES} bottles on one engine, ${AT_ONCE} starts at a time`,
  { timeout: 20 * 60_000 },
  () => {
    const slugs: string[] = [];

    before(async () => {
      await t.setup(TestBottles.shellManifest([agent]));
      t.env["BOT_BOTTLE_SUBNET_POOL"] = POOL;
    });
    after(() => t.teardown());

    test("all start, each network on its own /28 of the pool, none overlapping", async () => {
      // Separate CLI processes, as from separate shells: they race for subnets.
      for (let i = 0; i < BOTTLES; i += AT_ONCE)
        slugs.push(
          ...(await Promise.all(
            Array.from({ length: Math.min(AT_ONCE, BOTTLES - i) }, () => t.start(agent)),
          )),
        );
      assert.equal(new Set(slugs).size, BOTTLES);

      const listed = JSON.parse((await t.cli(["ls", "--json"])).stdout) as {
        slug: string;
        state: string;
      }[];
      for (const slug of slugs)
        assert.equal(listed.find((b) => b.slug === slug)?.state, "running", slug);

      const networks = await bottleNetworks();
      assert.equal(networks.length, 2 * BOTTLES);
      const pool = parseCidr(POOL) as Subnet;
      for (const n of networks) {
        assert.equal(n.subnet.prefix, 28, n.name);
        assert.ok(overlaps(n.subnet, pool), `${n.name} ${formatCidr(n.subnet)} is outside ${POOL}`);
      }
      for (const [i, a] of networks.entries())
        for (const b of networks.slice(i + 1))
          assert.ok(
            !overlaps(a.subnet, b.subnet),
            `${a.name} and ${b.name} share addresses: ${formatCidr(a.subnet)}, ${formatCidr(b.subnet)}`,
          );
    });

    test("a bottle reaches its own bundle, never another bottle's", async () => {
      const [first, second] = slugs as [string, string];
      const bundleIp = async (slug: string) =>
        (
          await run("docker", [
            "inspect",
            "--format",
            `{{(index .NetworkSettings.Networks "bot-bottle-${slug}-internal").IPAddress}}`,
            `bot-bottle-${slug}-bundle`,
          ])
        ).stdout.trim();
      const [own, other] = await Promise.all([bundleIp(first), bundleIp(second)]);
      assert.match(other, /^10\.216\./);
      const dial = (ip: string) =>
        t.sh(
          first,
          `node -e 'const s=require("net").connect(9099,"${ip}");s.setTimeout(3000);s.on("connect",()=>{console.log("open");process.exit(0)});s.on("timeout",()=>{console.log("timeout");process.exit(1)});s.on("error",e=>{console.log(e.code);process.exit(1)})'`,
        );
      const allowed = await dial(own);
      assert.equal(allowed.stdout.trim(), "open", allowed.stderr);
      const attack = await dial(other);
      assert.notEqual(attack.code, 0);
      assert.notEqual(attack.stdout.trim(), "open");
    });

    test("a full pool refuses the next start in one sentence, leaving nothing behind", async () => {
      const tiny = { ...t.env, BOT_BOTTLE_SUBNET_POOL: "10.217.0.0/27" };
      const saved = t.env;
      t.env = tiny;
      try {
        const one = await t.start(agent);
        slugs.push(one);
        const full = await t.cli(["start", agent, "--detach", "--yes"]);
        assert.equal(full.code, 3, full.stderr);
        assert.match(
          full.stderr,
          /^bot-bottle: bot-bottle's address pool 10\.217\.0\.0\/27 \(set by BOT_BOTTLE_SUBNET_POOL\) has no free \/28 left for this bottle's networks: it has room for 1 bottle, 1 bottle holds its addresses and \d+ bottles are on this engine$/m,
        );
        assert.match(
          full.stderr,
          /^hint: stop bottles you no longer need .*BOT_BOTTLE_SUBNET_POOL/m,
        );
        assert.doesNotMatch(full.stderr, STACK_LINE);
        // The refused start created nothing: its networks, containers and state are gone or never made.
        assert.equal((await bottleNetworks()).length, 2 * (BOTTLES + 1));
      } finally {
        t.env = saved;
      }
    });

    test("stop takes them all down side by side, and nothing is left", async () => {
      const bridges = async () =>
        (await run("ip", ["-o", "link", "show", "type", "bridge"])).stdout
          .split("\n")
          .filter((l) => slugs.some((s) => l.includes(`bb${s.slice(-6)}`))).length;
      assert.equal(await bridges(), 2 * slugs.length);
      const stopped = await t.cli(["stop", ...slugs], 600_000);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.deepEqual(await t.leftovers(agent), []);
      assert.equal(await bridges(), 0);
      const routes = (await run("ip", ["-4", "route"])).stdout;
      assert.doesNotMatch(routes, /^10\.21[67]\./m);
    });
  },
);

/**
 * Bottle networks from bot-bottle's address pool, on the real engine: starts racing for the same
 * subnet all end up on distinct ones (the engine refuses the overlap, the loser picks again), and
 * a full pool is refused in words.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import {
  addressPoolOf,
  formatCidr,
  overlaps,
  parseCidr,
} from "../../../src/backends/address-pool.js";
import { MachineFullError } from "../../../src/backends/docker/capacity.js";
import { DockerCli } from "../../../src/backends/docker/cli.js";
import { createBottleNetworks } from "../../../src/backends/docker/networks.js";
import type { NetworkPlan } from "../../../src/backends/plan.js";
import { run, type RunOptions } from "../../../src/exec/run.js";

/** The engine client, counting the networks it was asked to create. */
class CountingDocker extends DockerCli {
  creates = 0;
  override run(args: readonly string[], options: RunOptions = {}) {
    if (args[0] === "network" && args[1] === "create") this.creates++;
    return super.run(args, options);
  }
}

const id = randomBytes(3).toString("hex");
const made: string[] = [];
const network = (n: number, internal: boolean): NetworkPlan => ({
  name: `bot-bottle-test-pool-${id}-${n}`,
  bridge: `bbtp${id}${n}`,
  internal,
  labels: { "dev.bot-bottle.test": "1" },
});

describe("bottle networks from the address pool, on the engine", () => {
  after(async () => {
    if (made.length) await run("docker", ["network", "rm", ...made], { okExitCodes: [0, 1] });
  });

  // Four /28s; no host route to steer the first picks, so every start draws the same subnet.
  const pool = addressPoolOf({ BOT_BOTTLE_SUBNET_POOL: "10.218.0.0/26" });
  const blind = { routes: () => Promise.resolve([]), random: () => 0 };

  test("two starts racing for the same subnet both get one, the loser after a refusal", async () => {
    // Each racer is its own engine client with its own view, as two shells are.
    const racers = [new CountingDocker(process.env), new CountingDocker(process.env)];
    const got = await Promise.all(
      racers.map((docker, i) =>
        createBottleNetworks(docker, [network(i, true)], pool, (name) => made.push(name), blind),
      ),
    );
    const subnets = got.map((g) => parseCidr(Object.values(g)[0] ?? ""));
    assert.ok(subnets[0] && subnets[1]);
    assert.ok(!overlaps(subnets[0], subnets[1]));
    // Both drew the pool's first free /28: the engine took one and refused the other.
    assert.equal(racers[0]!.creates + racers[1]!.creates, 3);
  });

  test("a bottle's two networks get two free subnets of the pool", async () => {
    const docker = new DockerCli(process.env);
    const subnets = await createBottleNetworks(
      docker,
      [network(2, true), network(3, false)],
      pool,
      (name) => made.push(name),
      blind,
    );
    const a = parseCidr(subnets[network(2, true).name] ?? "");
    const b = parseCidr(subnets[network(3, false).name] ?? "");
    assert.ok(a && b);
    assert.ok(!overlaps(a, b), `${formatCidr(a)} and ${formatCidr(b)}`);
    const inspected = await run("docker", [
      "network",
      "inspect",
      "--format",
      "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
      network(2, true).name,
    ]);
    assert.equal(inspected.stdout.trim(), formatCidr(a));
  });

  test("a full pool is refused in words, and creates nothing", async () => {
    const docker = new CountingDocker(process.env);
    await assert.rejects(
      createBottleNetworks(docker, [network(4, true)], pool, (name) => made.push(name), blind),
      (err: unknown) => {
        assert.ok(err instanceof MachineFullError);
        assert.match(
          err.message,
          /^bot-bottle's address pool 10\.218\.0\.0\/26 \(set by BOT_BOTTLE_SUBNET_POOL\) has no free \/28 left for this bottle's networks: it has room for 2 bottles/,
        );
        assert.match(err.hint ?? "", /BOT_BOTTLE_SUBNET_POOL to a larger private range/);
        return true;
      },
    );
    // It found out from the engine's own list after its first draw was refused.
    assert.equal(docker.creates, 1);
    assert.equal(made.length, 4);
  });
});

/**
 * Bottle networks on the engine, each on a subnet of bot-bottle's address pool (address-pool.ts).
 * The engine is the registry: a subnet is taken while a network holds it and free once the
 * network is removed (at stop, by cleanup), so there is no allocation file to go stale. Starts
 * racing from several shells pick at random and the engine refuses the loser's overlapping
 * subnet; the loser looks again at what is taken and picks another.
 */
import { readFile } from "node:fs/promises";
import { CommandFailedError } from "../../exec/run.js";
import { LABELS } from "../../shared/labels.js";
import {
  formatCidr,
  freeCount,
  freeSlots,
  overlaps,
  parseCidr,
  pickFree,
  poolCapacity,
  SUBNET_POOL_ENV,
  type AddressPool,
  type Subnet,
} from "../address-pool.js";
import type { NetworkPlan } from "../plan.js";
import type { DockerCli } from "./cli.js";
import { labelFlags } from "./bundle.js";
import { bottlesOn, MachineFullError, plural } from "./capacity.js";

export interface HostRoute {
  subnet: Subnet;
  device: string;
}

/** Tries per network before a start gives up on racing other starts for a subnet. */
const ATTEMPTS = 8;

/** The host's IPv4 routes other than the default one, from /proc/net/route. */
export async function hostRoutes(
  read: () => Promise<string> = () => readFile("/proc/net/route", "utf8"),
): Promise<HostRoute[]> {
  const text = await read().catch(() => "");
  // Destination and mask are little-endian hex: 0010A8C0 is 192.168.16.0.
  const number = (hex: string) => Number.parseInt((hex.match(/../g) ?? []).reverse().join(""), 16);
  return text
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter(
      (f) =>
        f.length >= 8 && /^[0-9A-F]{8}$/i.test(f[1] ?? "") && /^[0-9A-F]{8}$/i.test(f[7] ?? ""),
    )
    .flatMap(([device = "", destination = "", , , , , , mask = ""]) => {
      const m = number(mask);
      const prefix = 32 - Math.log2(2 ** 32 - m);
      if (m === 0 || !Number.isInteger(prefix)) return [];
      return [
        {
          subnet: {
            base: number(destination) - (number(destination) % 2 ** (32 - prefix)),
            prefix,
          },
          device,
        },
      ];
    });
}

/** A network on the engine: the bottle it belongs to ("" for others) and its IPv4 subnets. */
interface EngineNetwork {
  slug: string;
  subnets: Subnet[];
}

/** Every network on the engine, with its subnets. */
async function engineNetworks(docker: DockerCli): Promise<EngineNetwork[]> {
  const ids = (await docker.run(["network", "ls", "--quiet"])).stdout.split("\n").filter(Boolean);
  if (ids.length === 0) return [];
  const { stdout } = await docker.run([
    "network",
    "inspect",
    "--format",
    `{{index .Labels "${LABELS.slug}"}}\t{{range .IPAM.Config}}{{.Subnet}} {{end}}`,
    ...ids,
  ]);
  return stdout
    .split("\n")
    .filter((line) => line.includes("\t"))
    .map((line) => {
      const [slug = "", list = ""] = line.split("\t");
      return { slug, subnets: list.split(" ").flatMap((c) => parseCidr(c) ?? []) };
    });
}

/** How many bottles have networks: on the engine, and inside the pool. */
function bottleCounts(pool: AddressPool, networks: readonly EngineNetwork[]) {
  const p = parseCidr(pool.cidr) as Subnet;
  const ours = networks.filter((n) => n.slug);
  return {
    engine: new Set(ours.map((n) => n.slug)).size,
    pool: new Set(ours.filter((n) => n.subnets.some((s) => overlaps(s, p))).map((n) => n.slug))
      .size,
  };
}

/** A bridge network as the plan names it (internal: no route out, no host address). */
async function createOn(docker: DockerCli, n: NetworkPlan, subnet: Subnet): Promise<void> {
  await docker.run([
    "network",
    "create",
    "--driver",
    "bridge",
    "--subnet",
    formatCidr(subnet),
    ...(n.internal ? ["--internal", "--opt", "com.docker.network.bridge.inhibit_ipv4=true"] : []),
    "--opt",
    `com.docker.network.bridge.name=${n.bridge}`,
    ...labelFlags(n.labels),
    n.name,
  ]);
}

const overlapRefusal = (err: unknown): boolean =>
  err instanceof CommandFailedError && /overlap/i.test(err.stderr);

/**
 * Creates a bottle's networks, each on a free subnet of the pool, and returns the subnets by
 * network name. `onCreated` hears of each network as it exists, so a failure of the other can
 * roll it back. The first pick avoids the host's routes only (no engine call); a refusal for
 * overlap makes it look at every network on the engine before picking again.
 */
export async function createBottleNetworks(
  docker: DockerCli,
  networks: readonly NetworkPlan[],
  pool: AddressPool,
  onCreated: (name: string) => void,
  options: { routes?: () => Promise<HostRoute[]>; random?: () => number } = {},
): Promise<Record<string, string>> {
  const known = await (options.routes ?? hostRoutes)();
  const taken: Subnet[] = known.map((r) => r.subnet);
  let engine: Promise<EngineNetwork[]> | undefined;
  const look = () =>
    (engine ??= engineNetworks(docker).then((found) => {
      taken.push(...found.flatMap((n) => n.subnets));
      return found;
    }));

  const createOne = async (n: NetworkPlan): Promise<[string, string]> => {
    for (let attempt = 1; ; attempt++) {
      const subnet = pickFree(pool, taken, options.random);
      if (!subnet) throw poolFull(pool, known, bottleCounts(pool, await look()));
      // Taken from now on, whichever way the create goes: the sibling network must not pick it.
      taken.push(subnet);
      try {
        await createOn(docker, n, subnet);
        onCreated(n.name);
        return [n.name, formatCidr(subnet)];
      } catch (err) {
        if (!overlapRefusal(err)) throw err;
        if (attempt === ATTEMPTS)
          throw new MachineFullError(
            `no subnet of bot-bottle's address pool ${pool.cidr} stayed free long enough to create ${n.name}: ${ATTEMPTS} picks were taken by other networks first`,
            "start again; if it keeps happening, fewer starts at once",
            err,
          );
        engine = undefined;
        await look();
      }
    }
  };
  return Object.fromEntries(await Promise.all(networks.map(createOne)));
}

/** Host routes over the pool, other than bot-bottle's own bridges (whose names start "bb"). */
function shadowingRoutes(pool: AddressPool, routes: readonly HostRoute[]): HostRoute[] {
  const p = parseCidr(pool.cidr) as Subnet;
  return routes.filter((r) => overlaps(r.subnet, p) && !r.device.startsWith("bb"));
}

/** "10.0.0.0/8 (tun0), …" */
export function describeRoutes(routes: readonly HostRoute[]): string {
  return routes.map((r) => `${formatCidr(r.subnet)} (${r.device})`).join(", ");
}

/** The pool has no free subnet left: says how full, and whether the host's routes take part. */
function poolFull(
  pool: AddressPool,
  routes: readonly HostRoute[],
  bottles: { engine: number; pool: number },
): MachineFullError {
  const shadowing = shadowingRoutes(pool, routes);
  const coverAll =
    freeCount(
      freeSlots(
        pool,
        shadowing.map((r) => r.subnet),
      ),
    ) === 0;
  const byRoutes = shadowing.length
    ? `; the host's routes ${describeRoutes(shadowing)} cover ${coverAll ? "all" : "part"} of it`
    : "";
  const source = pool.setBy === "default" ? "the default" : `set by ${SUBNET_POOL_ENV}`;
  return new MachineFullError(
    `bot-bottle's address pool ${pool.cidr} (${source}) has no free /${pool.prefix} left for this bottle's networks: it has room for ${plural(poolCapacity(pool), "bottle")}, ${plural(bottles.pool, "bottle")} hold${bottles.pool === 1 ? "s" : ""} its addresses and ${bottlesOn(bottles.engine)}${byRoutes}`,
    `stop bottles you no longer need (\`bot-bottle ls\`, then \`bot-bottle stop SLUG…\` or \`--all\`), or set ${SUBNET_POOL_ENV} to a larger private range free on this host (each bottle takes two /${pool.prefix}s)`,
  );
}

/** How much of the pool is free for new bottles, for `doctor`. */
export async function poolUsage(
  docker: DockerCli,
  pool: AddressPool,
  routes: () => Promise<HostRoute[]> = hostRoutes,
): Promise<{ freeBottles: number; bottles: number; shadowing: HostRoute[] }> {
  const [known, engine] = await Promise.all([routes(), engineNetworks(docker)]);
  const taken = [...known.map((r) => r.subnet), ...engine.flatMap((n) => n.subnets)];
  return {
    freeBottles: Math.floor(freeCount(freeSlots(pool, taken)) / 2),
    bottles: bottleCounts(pool, engine).engine,
    shadowing: shadowingRoutes(pool, known),
  };
}

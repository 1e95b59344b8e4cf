/**
 * bot-bottle's own IPv4 address pool: every bottle network gets a small subnet carved from it,
 * so the engine's default pools (a /16 or /20 per network, about 14 bottles' worth) are never the
 * wall. Pure arithmetic here; the engine side (what is taken, creating the network) lives with
 * the backend that creates networks.
 */
import { UsageError } from "../errors.js";

/** An IPv4 subnet: its first address as an unsigned 32-bit number, and its prefix length. */
export interface Subnet {
  base: number;
  prefix: number;
}

/** The pool a plan takes its networks' subnets from. */
export interface AddressPool {
  cidr: string;
  /** The prefix length of each bottle network's subnet. */
  prefix: number;
  /** Where the pool came from, for messages: the default or the variable that set it. */
  setBy: "default" | typeof SUBNET_POOL_ENV;
}

export const SUBNET_POOL_ENV = "BOT_BOTTLE_SUBNET_POOL";
/** Private, outside Docker's default pools (172.17–31/16, 192.168/20s) and the usual home ranges. */
export const DEFAULT_SUBNET_POOL = "10.213.0.0/16";
/**
 * A /28 holds 13 usable addresses beside the network, broadcast and gateway: a bottle network has
 * two or three endpoints.
 */
export const BOTTLE_SUBNET_PREFIX = 28;

/** Ranges a pool may come from: RFC 1918 and the shared address space of RFC 6598. */
const PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"].map(
  (c) => parseCidr(c) as Subnet,
);

function size(prefix: number): number {
  return 2 ** (32 - prefix);
}

export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) < 256))
    return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIPv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** "10.213.0.0/16" -> { base, prefix }; undefined for anything else (IPv6, host bits set). */
export function parseCidr(text: string): Subnet | undefined {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m) return undefined;
  const base = parseIPv4(m[1] as string);
  const prefix = Number(m[2]);
  if (base === undefined || prefix > 32 || base % size(prefix) !== 0) return undefined;
  return { base, prefix };
}

export function formatCidr(s: Subnet): string {
  return `${formatIPv4(s.base)}/${s.prefix}`;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.base < b.base + size(b.prefix) && b.base < a.base + size(a.prefix);
}

function contains(outer: Subnet, inner: Subnet): boolean {
  return (
    inner.prefix >= outer.prefix &&
    inner.base >= outer.base &&
    inner.base + size(inner.prefix) <= outer.base + size(outer.prefix)
  );
}

/** The pool this environment sets (BOT_BOTTLE_SUBNET_POOL), or the default; a bad one is refused. */
export function addressPoolOf(env: NodeJS.ProcessEnv): AddressPool {
  const value = env[SUBNET_POOL_ENV]?.trim();
  if (!value) return { cidr: DEFAULT_SUBNET_POOL, prefix: BOTTLE_SUBNET_PREFIX, setBy: "default" };
  const hint = `set ${SUBNET_POOL_ENV} to a private IPv4 range free on this host, such as ${DEFAULT_SUBNET_POOL} (each bottle takes two /${BOTTLE_SUBNET_PREFIX}s), or unset it`;
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(value);
  const base = m ? parseIPv4(m[1] as string) : undefined;
  const prefix = Number(m?.[2]);
  if (!m || base === undefined || prefix > 32)
    throw new UsageError(
      `${SUBNET_POOL_ENV}="${value}" is not an IPv4 range like 10.213.0.0/16`,
      hint,
    );
  if (base % size(prefix) !== 0)
    throw new UsageError(
      `${SUBNET_POOL_ENV}="${value}" has bits set past its /${prefix}: the range starts at ${formatIPv4(base - (base % size(prefix)))}`,
      `write ${formatIPv4(base - (base % size(prefix)))}/${prefix}`,
    );
  const pool = { base, prefix };
  if (!PRIVATE.some((p) => contains(p, pool)))
    throw new UsageError(
      `${SUBNET_POOL_ENV}="${value}" is not a private range: bottle networks would shadow public addresses`,
      hint,
    );
  if (prefix > BOTTLE_SUBNET_PREFIX - 1)
    throw new UsageError(
      `${SUBNET_POOL_ENV}="${value}" is too small: one bottle takes two /${BOTTLE_SUBNET_PREFIX}s, so the pool must be a /${BOTTLE_SUBNET_PREFIX - 1} or larger`,
      hint,
    );
  return { cidr: formatCidr(pool), prefix: BOTTLE_SUBNET_PREFIX, setBy: SUBNET_POOL_ENV };
}

/** How many bottles a pool holds at once (two networks each). */
export function poolCapacity(pool: AddressPool): number {
  const p = parseCidr(pool.cidr) as Subnet;
  return Math.floor(size(p.prefix) / size(pool.prefix) / 2);
}

/**
 * The pool's subnets of `pool.prefix` that overlap nothing `taken`, as ranges of slot numbers
 * (first address / subnet size), worked out from the gaps between taken ranges: cheap however
 * large the pool.
 */
export function freeSlots(pool: AddressPool, taken: readonly Subnet[]): [number, number][] {
  const p = parseCidr(pool.cidr) as Subnet;
  const step = size(pool.prefix);
  const end = p.base + size(p.prefix);
  const busy = taken
    .filter((t) => overlaps(t, p))
    .map((t) => [Math.max(t.base, p.base), Math.min(t.base + size(t.prefix), end)] as const)
    .sort((a, b) => a[0] - b[0]);
  const gaps: [number, number][] = [];
  let at = p.base;
  for (const [from, to] of busy) {
    if (from > at) gaps.push([at, from]);
    at = Math.max(at, to);
  }
  if (at < end) gaps.push([at, end]);
  return gaps
    .map(([from, to]): [number, number] => [Math.ceil(from / step), Math.floor(to / step)])
    .filter(([a, b]) => b > a);
}

/** How many free subnets those ranges hold. */
export function freeCount(slots: readonly [number, number][]): number {
  return slots.reduce((n, [a, b]) => n + b - a, 0);
}

/** A free subnet chosen at random (so starts racing from several shells rarely pick the same). */
export function pickFree(
  pool: AddressPool,
  taken: readonly Subnet[],
  random: () => number = Math.random,
): Subnet | undefined {
  const slots = freeSlots(pool, taken);
  let index = Math.floor(random() * freeCount(slots));
  for (const [a, b] of slots) {
    if (index < b - a) return { base: (a + index) * size(pool.prefix), prefix: pool.prefix };
    index -= b - a;
  }
  return undefined;
}

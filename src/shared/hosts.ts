/**
 * Host names and addresses, shared by the manifest checks on the host and the egress proxy in the
 * bundle, so one normalised spelling drives the allow decision, the credential and the address
 * dialled.
 */
import { isIP } from "node:net";
import { domainToASCII } from "node:url";

/** Lower case, no trailing dot, IDNA (punycode) form; undefined when it is not a DNS name. */
export function normaliseDnsName(name: string): string | undefined {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  if (trimmed === "" || trimmed.length > 253) return undefined;
  const ascii = domainToASCII(trimmed.toLowerCase());
  if (ascii === "" || ascii.length > 253) return undefined;
  const labels = ascii.split(".");
  const labelOk = (l: string) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l);
  if (!labels.every(labelOk)) return undefined;
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? "")) return undefined;
  return ascii;
}

/** True for an IPv4 or IPv6 literal, bracketed or not. */
export function isIpLiteral(value: string): boolean {
  return isIP(unbracket(value)) !== 0;
}

export function unbracket(value: string): string {
  return value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
}

/** An IP address as its bytes (4 or 16); undefined when it is not one (or carries a zone). */
export function ipBytes(address: string): number[] | undefined {
  const family = isIP(address);
  if (family === 4) return address.split(".").map(Number);
  if (family !== 6 || address.includes("%")) return undefined;
  let text = address.toLowerCase();
  const tail: number[] = [];
  const dotted = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    for (const part of dotted[1].split(".")) tail.push(Number(part));
    text = text.slice(0, dotted.index + 1) + "0:0";
  }
  const [head = "", rest] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = rest === undefined || rest === "" ? [] : rest.split(":");
  const fill = rest === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(fill).fill("0"), ...right];
  if (groups.length !== 8) return undefined;
  const bytes = groups.flatMap((g) => {
    const v = parseInt(g, 16);
    return [v >> 8, v & 255];
  });
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** The one spelling of an IP address (as the URL parser writes it); undefined if not one. */
export function canonicalIp(address: string): string | undefined {
  const bare = unbracket(address);
  const family = isIP(bare);
  if (family === 0 || bare.includes("%")) return undefined;
  try {
    return unbracket(new URL(`http://${family === 6 ? `[${bare}]` : bare}`).hostname);
  } catch {
    return undefined;
  }
}

type Net = readonly [bytes: readonly number[], prefix: number];

/**
 * Addresses no name may resolve to, and no IP literal may name, unless the operator maps it there
 * on purpose: "this network", loopback, private, shared (CGNAT), link-local (the metadata address
 * among them), documentation, benchmarking, multicast, reserved and broadcast.
 */
const INTERNAL_V4: readonly Net[] = [
  [[0, 0, 0, 0], 8],
  [[10, 0, 0, 0], 8],
  [[100, 64, 0, 0], 10],
  [[127, 0, 0, 0], 8],
  [[169, 254, 0, 0], 16],
  [[172, 16, 0, 0], 12],
  [[192, 0, 0, 0], 24],
  [[192, 0, 2, 0], 24],
  [[192, 88, 99, 0], 24],
  [[192, 168, 0, 0], 16],
  [[198, 18, 0, 0], 15],
  [[198, 51, 100, 0], 24],
  [[203, 0, 113, 0], 24],
  [[224, 0, 0, 0], 4],
  [[240, 0, 0, 0], 4],
];

/**
 * IPv6 ranges judged as a whole. The forms that carry an IPv4 address (mapped, compatible,
 * translated, NAT64, 6to4) are judged by that address first; what is left of ::/8 is reserved.
 */
const INTERNAL_V6: readonly Net[] = [
  [[0], 8],
  [[0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], 48],
  [[0x01, 0x00], 64],
  [[0x20, 0x01, 0x00, 0x00], 32],
  [[0x20, 0x01, 0x00, 0x10], 28],
  [[0x20, 0x01, 0x00, 0x20], 28],
  [[0x20, 0x01, 0x0d, 0xb8], 32],
  [[0x3f, 0xff], 20],
  [[0x5f, 0x00], 16],
  [[0xfc], 7],
  [[0xfe, 0x80], 10],
  [[0xfe, 0xc0], 10],
  [[0xff], 8],
];

function inNet(bytes: readonly number[], [net, prefix]: Net): boolean {
  for (let bit = 0; bit < prefix; bit += 8) {
    const take = Math.min(8, prefix - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[bit / 8] ?? 0) & mask) !== ((net[bit / 8] ?? 0) & mask)) return false;
  }
  return true;
}

function startsWith(bytes: readonly number[], prefix: readonly number[]): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

/** The IPv4 address an IPv6 address carries, for the forms that route to it. */
function embeddedV4(b: readonly number[]): number[] | undefined {
  const zeros = (n: number) => Array<number>(n).fill(0);
  // ::a.b.c.d (compatible), ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (translated), 64:ff9b::/96.
  for (const prefix of [
    zeros(12),
    [...zeros(10), 0xff, 0xff],
    [...zeros(8), 0xff, 0xff, 0, 0],
    [0x00, 0x64, 0xff, 0x9b, ...zeros(8)],
  ])
    if (startsWith(b, prefix)) return b.slice(12, 16);
  // 6to4: 2002:AABB:CCDD::/48 routes to AA.BB.CC.DD.
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6);
  return undefined;
}

/**
 * True when `address` is loopback, private, link-local, metadata, multicast or reserved — or
 * not an IP address at all (fail closed). IPv6 forms that carry an IPv4 address are judged by it.
 */
export function isInternalAddress(address: string): boolean {
  const bytes = ipBytes(address);
  if (!bytes) return true;
  if (bytes.length === 4) return INTERNAL_V4.some((n) => inNet(bytes, n));
  const v4 = embeddedV4(bytes);
  if (v4) {
    // "::" and "::1" are not IPv4-compatible addresses of 0.0.0.0/8: both are internal anyway.
    return INTERNAL_V4.some((n) => inNet(v4, n));
  }
  return INTERNAL_V6.some((n) => inNet(bytes, n));
}

/**
 * Host names and addresses, shared by the manifest checks on the host and the egress proxy in the
 * bundle, so one normalised spelling drives the allow decision, the credential and the address
 * dialled.
 */
import { BlockList, isIP } from "node:net";
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

/**
 * Addresses no name may resolve to unless the operator maps it there on purpose: loopback,
 * private, shared, link-local (the metadata address among them), multicast, reserved.
 */
const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  INTERNAL.addSubnet(net, prefix, "ipv4");
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b::", 96],
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
] as const)
  INTERNAL.addSubnet(net, prefix, "ipv6");

/** True when `address` is loopback, private, link-local, metadata, multicast or reserved. */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return INTERNAL.check(address, "ipv4");
  if (family !== 6) return true;
  const lower = address.toLowerCase();
  // IPv4-mapped and -compatible forms carry an IPv4 address: judge that one.
  const mapped = /^(?:::ffff:|::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower)?.[1];
  if (mapped) return INTERNAL.check(mapped, "ipv4");
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hexMapped) {
    const hi = parseInt(hexMapped[1] ?? "0", 16);
    const lo = parseInt(hexMapped[2] ?? "0", 16);
    return INTERNAL.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, "ipv4");
  }
  return INTERNAL.check(address, "ipv6");
}

/**
 * The interceptor's decisions, as pure functions: whether the token matches, which flow admits a
 * destination, and the verdict byte the guest gets when the bundle side cannot be reached.
 */
import { timingSafeEqual } from "node:crypto";
import type { InterceptFlow } from "../../shared/intercept-config.js";
import type { Preamble } from "./preamble.js";

/** The verdict byte for a relayed flow. */
export const VERDICT_CONNECTED = 0;
/** ECONNREFUSED: a destination no flow admits, or a bundle port nothing listens on. */
export const ECONNREFUSED = 111;
/** EHOSTUNREACH: any other failure to reach the bundle side. */
export const EHOSTUNREACH = 113;

/** The token as bytes, from exactly 64 hex digits; undefined for anything else. */
export function tokenFromHex(hex: string | undefined): Buffer | undefined {
  return hex !== undefined && /^[0-9a-fA-F]{64}$/.test(hex) ? Buffer.from(hex, "hex") : undefined;
}

/** Whether the preamble carries the token, compared in constant time. */
export function tokenMatches(expected: Buffer, presented: Buffer): boolean {
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

/** The flow that admits the preamble's destination, if any (IPv4 only). */
export function admittingFlow(
  flows: readonly InterceptFlow[],
  p: Pick<Preamble, "family" | "address" | "port">,
): InterceptFlow | undefined {
  if (p.family !== 4) return undefined;
  return flows.find((f) => f.address === p.address && f.port === p.port);
}

/** The errno the guest sees when connecting to the bundle side failed with `code`. */
export function errnoFor(code: string | undefined): number {
  return code === "ECONNREFUSED" ? ECONNREFUSED : EHOSTUNREACH;
}

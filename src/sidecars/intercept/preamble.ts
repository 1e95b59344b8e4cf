/**
 * smolvm's egress-interceptor preamble, the bytes in front of every guest flow it hands over:
 *
 *   "SMOLICPT" | version 1 | 32-byte token | family 4|6 | port (u16 BE) | address (4|16 bytes)
 *
 * Pure: parses what has arrived so far, saying whether more is needed, what is wrong, or what the
 * preamble holds and where the flow's own bytes begin. It reads the token but never judges it.
 */

export const MAGIC = Buffer.from("SMOLICPT", "latin1");
export const VERSION = 1;
export const TOKEN_BYTES = 32;
/** Magic, version, token, family and port: the part before the address. */
export const HEAD_BYTES = MAGIC.length + 1 + TOKEN_BYTES + 1 + 2;
/** The longest preamble (an IPv6 address): nothing longer is ever buffered as one. */
export const MAX_PREAMBLE_BYTES = HEAD_BYTES + 16;

export interface Preamble {
  token: Buffer;
  family: 4 | 6;
  port: number;
  /** Dotted quad for IPv4; eight hex groups, uncompressed, for IPv6. */
  address: string;
}

export type PreambleProblem = "magic" | "version" | "family";

export type ParseResult =
  | { kind: "incomplete" }
  | { kind: "invalid"; problem: PreambleProblem }
  | { kind: "ok"; preamble: Preamble; length: number };

function formatAddress(bytes: Buffer, family: 4 | 6): string {
  if (family === 4) return [...bytes].join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(":");
}

/** The preamble at the start of `data` (everything received so far on the connection). */
export function parsePreamble(data: Buffer): ParseResult {
  // A wrong magic is known from its first wrong byte: no need to wait for the rest.
  const seen = Math.min(data.length, MAGIC.length);
  if (!data.subarray(0, seen).equals(MAGIC.subarray(0, seen)))
    return { kind: "invalid", problem: "magic" };
  if (data.length <= MAGIC.length) return { kind: "incomplete" };
  if (data[MAGIC.length] !== VERSION) return { kind: "invalid", problem: "version" };
  const familyAt = MAGIC.length + 1 + TOKEN_BYTES;
  if (data.length <= familyAt) return { kind: "incomplete" };
  const family = data[familyAt];
  if (family !== 4 && family !== 6) return { kind: "invalid", problem: "family" };
  const length = HEAD_BYTES + (family === 4 ? 4 : 16);
  if (data.length < length) return { kind: "incomplete" };
  return {
    kind: "ok",
    length,
    preamble: {
      token: Buffer.from(data.subarray(MAGIC.length + 1, familyAt)),
      family,
      port: data.readUInt16BE(familyAt + 1),
      address: formatAddress(data.subarray(HEAD_BYTES, length), family),
    },
  };
}

/**
 * The address dialled for a host: its `extra_hosts` entry, or the public addresses its name
 * resolves to. A name is scanned for secrets before it is looked up — a lookup is itself a
 * message out (a secret spelled into a host name leaves as a DNS query) — and the cache of
 * answers is bounded.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP } from "node:net";
import { isInternalAddress } from "../../shared/hosts.js";
import type { Finding, SecretScanner } from "../dlp.js";
import { literalAllowed, refuse, type Refusal, type Target } from "./policy.js";

/** Name resolution: the system resolver, or a test's own. */
export type Lookup = (host: string) => Promise<LookupAddress[]>;

export const systemLookup: Lookup = (host) =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );

export interface Address {
  address: string;
  family: number;
}

export class Resolver {
  /** Insertion-ordered: the first entry is the oldest. */
  private readonly cache = new Map<string, { at: number; addresses: LookupAddress[] }>();

  constructor(
    private readonly lookup: Lookup,
    private readonly limits: { dnsCacheEntries: number; dnsTtlMs: number },
  ) {}

  clear(): void {
    this.cache.clear();
  }

  get size(): number {
    return this.cache.size;
  }

  async resolve(
    target: Target,
    extraHosts: Readonly<Record<string, string>>,
    scanner: SecretScanner,
    secrets: Readonly<Record<string, string>>,
  ): Promise<Address | Refusal> {
    const mapped = extraHosts[target.host];
    if (mapped) return { address: mapped, family: isIP(mapped) };
    if (target.ip) {
      const no = literalAllowed(target, extraHosts);
      if (no) return no;
      return { address: target.host, family: isIP(target.host) };
    }
    const finding = scanHostName(target.host, scanner, secrets);
    if (finding)
      return refuse(
        "secret-detected",
        `the host name carries ${finding.description} (${finding.name}) — secrets may not leave the bottle, not even as a DNS query`,
      );
    let cached = this.cache.get(target.host);
    if (!cached || performance.now() - cached.at > this.limits.dnsTtlMs) {
      let addresses: LookupAddress[];
      try {
        addresses = await this.lookup(target.host);
      } catch {
        return refuse("dns-failed", `the name "${target.host}" does not resolve`);
      }
      cached = { at: performance.now(), addresses };
      this.cache.delete(target.host);
      this.cache.set(target.host, cached);
      while (this.cache.size > this.limits.dnsCacheEntries) {
        const oldest = this.cache.keys().next().value;
        if (oldest === undefined) break;
        this.cache.delete(oldest);
      }
    }
    const internal = cached.addresses.find((a) => isInternalAddress(a.address));
    if (internal || cached.addresses.length === 0)
      return refuse(
        "private-address",
        `"${target.host}" resolves to a private, loopback or link-local address — the operator can map it on purpose with egress.extra_hosts`,
      );
    const first = cached.addresses[0] as LookupAddress;
    return { address: first.address, family: first.family };
  }
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

function base32Decode(text: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of text) {
    const v = BASE32.indexOf(c);
    if (v < 0) continue;
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/**
 * A host name as a carrier: as written, with its labels run together (a secret split over
 * labels), and its hex- or base32-looking labels decoded. DNS names are case-insensitive, so the
 * scanner sees them in the case the secret has too.
 */
export function scanHostName(
  host: string,
  scanner: SecretScanner,
  secrets: Readonly<Record<string, string>>,
): Finding | undefined {
  const labels = host.split(".");
  const joined = labels.join("");
  const views = [host, joined, host.toUpperCase(), joined.toUpperCase()];
  for (const text of [joined, ...labels]) {
    if (text.length >= 16 && /^[0-9a-f]+$/.test(text) && text.length % 2 === 0)
      views.push(Buffer.from(text, "hex").toString("latin1"));
    if (text.length >= 16 && /^[a-z2-7]+$/.test(text))
      for (let skip = 0; skip < 8 && skip < text.length; skip++)
        views.push(base32Decode(text.slice(skip)).toString("latin1"));
  }
  const none = new Set<string>();
  for (const view of views) {
    const finding = scanner.scan(view, none) ?? scanner.scan(view.toLowerCase(), none);
    if (finding) return finding;
  }
  return caseInsensitiveHeld(host, joined, secrets);
}

/** Held secrets compared without case: a name's letters arrive lower-cased whatever was sent. */
function caseInsensitiveHeld(
  host: string,
  joined: string,
  secrets: Readonly<Record<string, string>>,
): Finding | undefined {
  for (const [name, value] of Object.entries(secrets)) {
    const lower = value.toLowerCase();
    if (lower.length >= 8 && (host.includes(lower) || joined.includes(lower)))
      return {
        kind: "held-secret",
        name,
        description: `the value of ${name}, a secret this bottle holds`,
      };
  }
  return undefined;
}

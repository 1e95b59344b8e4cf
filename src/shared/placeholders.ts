/**
 * Placeholders: what the agent holds instead of a real token. A placeholder has the real token's
 * shape — its prefix ("sk-ant-api03-", "ghp_"), its length and the class of every character — so
 * clients that check a key's format accept it and a body's length does not change when the proxy
 * swaps one for the other. It is derived from the token, the variable's name and the bottle's
 * slug, so the host (which sets it in the agent's environment) and the bundle (which must
 * recognise it) compute the same value without passing it around. It reveals the token's prefix
 * and length, nothing else — except for the JSON Web Tokens of a forwarded login, whose claims it
 * keeps (see placeholderFor).
 */
import { createHmac } from "node:crypto";

const DIGITS = "0123456789";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** The leading part kept as is: up to the last "-" or "_" among the first 16 characters. */
function prefixLength(token: string): number {
  const head = token.slice(0, Math.min(16, Math.floor(token.length / 2)));
  return Math.max(head.lastIndexOf("-"), head.lastIndexOf("_")) + 1;
}

/** `token` from `keep` on, each digit and letter replaced by one of its class, keyed by name and slug. */
function replaceClasses(token: string, keep: number, name: string, slug: string): string {
  const stream: number[] = [];
  for (let block = 0; stream.length < token.length; block++)
    stream.push(
      ...createHmac("sha256", `bot-bottle placeholder ${slug}`)
        .update(`${name}\0${block}`)
        .digest(),
    );
  let out = token.slice(0, keep);
  for (let i = keep; i < token.length; i++) {
    const c = token[i] ?? "";
    const r = stream[i] ?? 0;
    const set = DIGITS.includes(c)
      ? DIGITS
      : LOWER.includes(c)
        ? LOWER
        : UPPER.includes(c)
          ? UPPER
          : undefined;
    out += set ? (set[r % set.length] ?? c) : c;
  }
  return out;
}

/** A JSON Web Token: header, claims and signature, each base64url, the header naming its alg. */
const JWT = /^([A-Za-z0-9_-]{10,})\.([A-Za-z0-9_-]{10,})\.([A-Za-z0-9_-]{16,})$/;

function jwtParts(token: string): [string, string, string] | undefined {
  const m = JWT.exec(token);
  if (!m) return undefined;
  try {
    const header = JSON.parse(Buffer.from(m[1] ?? "", "base64url").toString("utf8")) as unknown;
    if (typeof header !== "object" || header === null || !("alg" in header)) return undefined;
  } catch {
    return undefined;
  }
  return [m[1] ?? "", m[2] ?? "", m[3] ?? ""];
}

/**
 * The placeholder of `token`. With `jwt` (a forwarded login whose CLI reads its token's claims,
 * such as the expiry), a JSON Web Token keeps its header and claims and only its signature — the
 * part that makes it a credential — is replaced: the agent can read what the token says, and
 * cannot use it.
 */
export function placeholderFor(
  token: string,
  name: string,
  slug: string,
  options: { jwt?: boolean } = {},
): string {
  const parts = options.jwt ? jwtParts(token) : undefined;
  if (parts) {
    const [header, claims, signature] = parts;
    return `${header}.${claims}.${replaceClasses(signature, 0, name, slug)}`;
  }
  const keep = prefixLength(token);
  const out = replaceClasses(token, keep, name, slug);
  // A token made only of its prefix and punctuation would come back unchanged: never hand it on.
  return out === token
    ? "bot-bottle-placeholder-" + createHmac("sha256", slug).update(name).digest("hex").slice(0, 16)
    : out;
}

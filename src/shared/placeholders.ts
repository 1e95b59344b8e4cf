/**
 * Placeholders: what the agent holds instead of a real token. A placeholder has the real token's
 * shape — its prefix ("sk-ant-api03-", "ghp_"), its length and the class of every character — so
 * clients that check a key's format accept it and a body's length does not change when the proxy
 * swaps one for the other. It is derived from the token, the variable's name and the bottle's
 * slug, so the host (which sets it in the agent's environment) and the bundle (which must
 * recognise it) compute the same value without passing it around. It reveals the token's prefix
 * and length, nothing else.
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

export function placeholderFor(token: string, name: string, slug: string): string {
  const keep = prefixLength(token);
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
  // A token made only of its prefix and punctuation would come back unchanged: never hand it on.
  return out === token
    ? "bot-bottle-placeholder-" + createHmac("sha256", slug).update(name).digest("hex").slice(0, 16)
    : out;
}

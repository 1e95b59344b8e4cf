/**
 * A token endpoint on the way out (a forwarded host login's refresh): the agent sends the
 * placeholder of the refresh token, the endpoint receives the real one; the endpoint's reply
 * carries new tokens, which the bundle keeps as the login's new values while the agent receives
 * their placeholders. Both bodies are small JSON (or form) documents, held whole.
 */
import type { TokenExchange } from "../../shared/egress-config.js";

/** A token request or reply larger than this is refused: they are a few hundred bytes. */
export const EXCHANGE_LIMIT = 256 * 1024;

/** `body` with every `placeholder` replaced by `real` (they have the same length). */
export function swapPlaceholder(body: Buffer, placeholder: string, real: string): Buffer {
  if (!placeholder || placeholder.length !== real.length) return body;
  const from = Buffer.from(placeholder, "latin1");
  const to = Buffer.from(real, "latin1");
  const out = Buffer.from(body);
  for (let i = out.indexOf(from); i >= 0; i = out.indexOf(from, i + to.length)) to.copy(out, i);
  return out;
}

/**
 * The new tokens in a token endpoint's reply: each field `rotates` names that holds a non-empty
 * string, under its variable. Undefined when the reply is not a JSON object.
 */
export function rotatedTokens(
  body: Buffer,
  exchange: TokenExchange,
): Record<string, string> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const fields = parsed as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [field, name] of Object.entries(exchange.rotates)) {
    const value = fields[field];
    if (typeof value === "string" && value.length >= 8) out[name] = value;
  }
  return out;
}

/** A token endpoint reply's `expires_in` (seconds), when it gives one. */
export function expiresIn(body: Buffer): number | undefined {
  try {
    const value = (JSON.parse(body.toString("utf8")) as { expires_in?: unknown }).expires_in;
    return typeof value === "number" && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The agent's proxy key. Where the bundle publishes the proxy's port on the host's loopback
 * (smolmachines), more than the agent can reach it: a local process or another bottle's VM could
 * spend this bottle's credentials. There every request that enters the proxy — a CONNECT (decrypted
 * or passthrough), an absolute-form request, an absolute-form upgrade — must carry
 * `Proxy-Authorization: Basic base64(<any user>:<key>)`; the key decides, the user name does not.
 * A CONNECT is checked once: the requests inside its tunnel were authorised with it. An
 * origin-form request (`GET /`, as the cage self-test sends) is no proxy request and keeps its own
 * refusal, key or not. Without the key: 407 with a Basic challenge, one audit line, nothing sent
 * upstream, the connection closed.
 *
 * The key is read once, at start, from the variable the config's `agentKeyEnv` names, and holds
 * for the daemon's life: a reload that renames, drops or adds `agentKeyEnv` neither changes the key
 * nor turns the check off (a reload that adds it to a proxy started without one is refused). Only
 * a digest is kept; the presented value is compared as a digest in constant time and never logged,
 * audited, echoed or forwarded (Proxy-Authorization is hop-by-hop, see framing.ts).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { refuse, type Refusal } from "./policy.js";

export const PROXY_AUTH_TAG = "proxy-auth-required";
export const PROXY_AUTH_STATUS = 407;
/** The challenge sent with every 407. */
export const PROXY_AUTHENTICATE = 'Basic realm="bot-bottle"';

/** What a request's Proxy-Authorization lines hold: the presented key's bytes, or why none. */
export type Presented = { key: Buffer } | "missing" | "malformed";

const BASIC = /^basic +([A-Za-z0-9+/]+)(={0,2})$/i;

/**
 * The key in the request's one Proxy-Authorization line: Basic, strict base64 (padding optional
 * but, when present, right), "user:key" with the key after the first colon. Two lines, another
 * scheme, bad base64 or no colon are malformed. Pure; reads raw header lines, not a merge.
 */
export function presentedKey(rawHeaders: readonly string[]): Presented {
  let value: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? "").toLowerCase() !== "proxy-authorization") continue;
    if (value !== undefined) return "malformed";
    value = (rawHeaders[i + 1] ?? "").trim();
  }
  if (value === undefined) return "missing";
  const m = BASIC.exec(value);
  if (!m) return "malformed";
  const b64 = m[1] ?? "";
  const padding = (m[2] ?? "").length;
  if (b64.length % 4 === 1 || (padding > 0 && (b64.length + padding) % 4 !== 0)) return "malformed";
  const decoded = Buffer.from(b64, "base64");
  // Only the canonical spelling: no stray bits in the last character.
  if (decoded.toString("base64").replace(/=+$/, "") !== b64) return "malformed";
  const colon = decoded.indexOf(0x3a);
  if (colon < 0) return "malformed";
  return { key: decoded.subarray(colon + 1) };
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest();

/** The key the agent must present; holds only its digest. */
export class AgentKey {
  private readonly digest: Buffer;

  constructor(key: string) {
    if (!key) throw new Error("the agent's proxy key is empty");
    this.digest = sha256(Buffer.from(key, "utf8"));
  }

  /** Whether `presented` is the key: equal-length digests compared in constant time. */
  matches(presented: Buffer): boolean {
    return timingSafeEqual(sha256(presented), this.digest);
  }
}

/** Whether the request needs the key: a CONNECT, or any absolute-form target (origin-form not). */
export function needsKey(method: string | undefined, url: string | undefined): boolean {
  return method === "CONNECT" || /^[a-z]+:\/\//i.test(url ?? "");
}

const HOW =
  "send Proxy-Authorization: Basic with any user name and this bottle's proxy key as the password (a proxy URL http://USER:KEY@HOST:PORT does it)";

/** Why a request is refused for its key, or undefined when it may go on. Never quotes a value. */
export function keyRefusal(
  key: AgentKey | undefined,
  req: Pick<IncomingMessage, "method" | "url" | "rawHeaders">,
): Refusal | undefined {
  if (key === undefined || !needsKey(req.method, req.url)) return undefined;
  const presented = presentedKey(req.rawHeaders);
  if (presented === "missing")
    return refuse(PROXY_AUTH_TAG, `this proxy needs the bottle's proxy key — ${HOW}`);
  if (presented === "malformed")
    return refuse(
      PROXY_AUTH_TAG,
      `the Proxy-Authorization header is not one line of Basic credentials USER:KEY — ${HOW}`,
    );
  if (!key.matches(presented.key))
    return refuse(
      PROXY_AUTH_TAG,
      "the Proxy-Authorization header does not carry this bottle's proxy key",
    );
  return undefined;
}

/** The headers a key refusal adds to the usual refusal headers. */
export const KEY_CHALLENGE: Readonly<Record<string, string>> = {
  "Proxy-Authenticate": PROXY_AUTHENTICATE,
};

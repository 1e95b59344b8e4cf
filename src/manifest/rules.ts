/**
 * Pure checks on single manifest values. Each returns a problem sentence (what is wrong and what
 * to write instead) or undefined. None of them ever puts the checked value into the sentence:
 * manifests sit next to tokens, and a misplaced token must not be echoed to a terminal or log.
 */
import { isIP } from "node:net";
import { DURATION_EXAMPLE, formatDuration, parseDuration } from "../shared/duration.js";
import { isIpLiteral, normaliseDnsName } from "../shared/hosts.js";

export { isIpLiteral, normaliseDnsName };
// Route and upstream checks live in shared/ (the supervise server in the bundle uses them too).
export {
  checkPathPrefix,
  checkRouteHost,
  HTTP_METHODS,
  parseGitUpstream,
  parseSshUpstream,
  type GitUpstreamAddress,
} from "../shared/route-checks.js";

/** Names of agents and bottles: they end up in container, network and host names. */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
export const NAME_RULE =
  'must be 1–40 lower-case letters, digits or "-", starting and ending with a letter or digit, e.g. "dev"';

export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const GIT_NAME_PATTERN = /^[A-Za-z0-9._-]+$/;

/** An HTTP header field name (RFC 9110 token). */
export const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Shapes of real tokens that would also pass as variable names (e.g. "ghp_…"). */
const TOKEN_SHAPED = /^(gh[pousr]_|github_pat_|glpat-|xox[abpr]-|sk-|sk_live_|AKIA[0-9A-Z]{12})/;

export function checkEnvName(value: string): string | undefined {
  if (ENV_NAME_PATTERN.test(value) && !TOKEN_SHAPED.test(value) && value.length <= 128)
    return undefined;
  return (
    "must be the name of an environment variable on the host (letters, digits and _, not " +
    'starting with a digit), e.g. "ANTHROPIC_API_KEY" — never the token itself'
  );
}

export function checkExtraHostName(name: string): string | undefined {
  if (name.includes("*") || isIpLiteral(name) || normaliseDnsName(name) === undefined)
    return 'must be a DNS host name without wildcards, e.g. "api.example.com"';
  return undefined;
}

export function checkIpAddress(value: string): string | undefined {
  if (isIP(value) !== 0) return undefined;
  return 'must be an IPv4 or IPv6 address, e.g. "10.0.0.5"';
}

/** The HTTP user name sent with an HTTPS upstream's token. */
export function checkGitUsername(value: string): string | undefined {
  const example = 'e.g. "x-access-token" (GitHub) or "oauth2" (GitLab)';
  if (value === "") return `must not be empty — write the user name the host expects, ${example}`;
  if (/[\s\p{Cc}:]/u.test(value))
    return `must not contain ":" or white space — write the user name the host expects, ${example}`;
  if (TOKEN_SHAPED.test(value))
    return "looks like a token — name the host variable that holds the token in `token_env`; the manifest never holds it";
  return undefined;
}

/**
 * A ref pattern of a git entry's `push.refs`: a ref name under "refs/" by git's rules
 * (git check-ref-format), where "*" matches within one segment and "**", a whole segment, across
 * segments.
 */
export function checkRefPattern(value: string): string | undefined {
  const example = 'e.g. "refs/heads/*", "refs/heads/feature/**" or "refs/tags/v*"';
  if (!value.startsWith("refs/")) return `must start with "refs/", ${example}`;
  if (/[\s\p{Cc}]/u.test(value))
    return `must not contain white space or control characters, ${example}`;
  if (/[~^:?[\\]/.test(value))
    return `must not contain "~", "^", ":", "?", "[" or "\\" (git refuses them in ref names; "*" is the only wildcard), ${example}`;
  if (value.includes("..")) return `must not contain "..", ${example}`;
  if (value.includes("@{")) return `must not contain "@{", ${example}`;
  const segments = value.split("/");
  if (segments.some((s) => s === ""))
    return `must not have an empty segment ("//" or a trailing "/"), ${example}`;
  if (segments.some((s) => s.startsWith(".") || s.endsWith(".lock")))
    return `must not have a segment starting with "." or ending in ".lock", ${example}`;
  if (value.endsWith(".")) return `must not end with ".", ${example}`;
  if (segments.some((s) => s.includes("**") && s !== "**"))
    return `may use "**" only as a whole segment (it matches across segments), as in "refs/heads/**"`;
  return undefined;
}

const HOST_KEY_TYPES = new Set([
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
]);

/**
 * An OpenSSH public host key line: "[hosts] TYPE BASE64 [comment]". The base64 blob must decode
 * and name the same key type, so a truncated or mis-pasted key is caught here, not at push time.
 */
export function checkKnownHostKey(value: string): string | undefined {
  const example =
    'write the host\'s public key line, e.g. "ssh-ed25519 AAAAC3Nza…" (from `ssh-keyscan -t ed25519 HOST`, checked against the fingerprint the host publishes)';
  if (value.includes("PRIVATE KEY"))
    return `looks like a private key — this field takes the upstream host's public key; ${example}`;
  const fields = value.trim().split(/\s+/);
  const typeIndex = fields.findIndex((f) => HOST_KEY_TYPES.has(f));
  if (typeIndex < 0 || typeIndex > 1) return `is not an OpenSSH public host key line — ${example}`;
  const type = fields[typeIndex] as string;
  const blob = fields[typeIndex + 1];
  if (blob === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob))
    return `has no base64 key after the key type — ${example}`;
  if (!isWellFormedKeyBlob(Buffer.from(blob, "base64"), type))
    return `has a key that is truncated or does not match its key type — ${example}`;
  return undefined;
}

/** An SSH public key blob is a run of length-prefixed fields, the first naming the key type. */
function isWellFormedKeyBlob(bytes: Buffer, type: string): boolean {
  const fields: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 4 > bytes.length) return false;
    const length = bytes.readUInt32BE(offset);
    offset += 4;
    if (offset + length > bytes.length) return false;
    fields.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  if (fields.length < 2 || fields[0]?.toString("latin1") !== type) return false;
  if (type === "ssh-ed25519") return fields.length === 2 && fields[1]?.length === 32;
  return true;
}

/** Levenshtein distance, for "did you mean" hints on misspelt keys. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(
        cur + 1,
        (row[j - 1] as number) + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = cur;
    }
  }
  return row[b.length] as number;
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** A duration ("30s", "5m", "2h") between `min` and `max` seconds. */
export function checkDuration(
  value: string,
  limits: { min: number; max: number },
): string | undefined {
  const seconds = parseDuration(value);
  if (seconds === undefined)
    return `must be a duration: a whole number and a unit (s, m, h or d), ${DURATION_EXAMPLE}`;
  if (seconds < limits.min)
    return `must be at least ${formatDuration(limits.min)}, ${DURATION_EXAMPLE}`;
  if (seconds > limits.max)
    return `must be at most ${formatDuration(limits.max)}, ${DURATION_EXAMPLE}`;
  return undefined;
}

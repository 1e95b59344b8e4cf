/**
 * Pure checks on single manifest values. Each returns a problem sentence (what is wrong and what
 * to write instead) or undefined. None of them ever puts the checked value into the sentence:
 * manifests sit next to tokens, and a misplaced token must not be echoed to a terminal or log.
 */
import { isIP } from "node:net";
import { isIpLiteral, normaliseDnsName } from "../shared/hosts.js";

export { isIpLiteral, normaliseDnsName };

/** Names of agents and bottles: they end up in container, network and host names. */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
export const NAME_RULE =
  'must be 1–40 lower-case letters, digits or "-", starting and ending with a letter or digit, e.g. "dev"';

export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const GIT_NAME_PATTERN = /^[A-Za-z0-9._-]+$/;

/** An HTTP header field name (RFC 9110 token). */
export const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

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

const HOST_EXAMPLE = 'e.g. "api.example.com" or "*.example.com"';

/** A route's host: a DNS name, or "*." plus a name of at least two labels. */
export function checkRouteHost(host: string, allowIpLiteral: boolean): string | undefined {
  if (host.trim() === "") return `is empty — write a host name, ${HOST_EXAMPLE}`;
  if (/\s/.test(host)) return `contains white space — write only the host name, ${HOST_EXAMPLE}`;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host))
    return `includes a scheme — write only the host name, ${HOST_EXAMPLE}`;
  if (isIpLiteral(host)) {
    if (allowIpLiteral) return undefined;
    return 'is an IP literal — name the host by its DNS name, or set "allow_ip_literal": true on this route if you mean it';
  }
  if (host.includes("/"))
    return 'includes a path — write only the host name and put path prefixes in "paths"';
  if (host.includes("@"))
    return `includes user information — write only the host name, ${HOST_EXAMPLE}`;
  if (host.includes(":"))
    return `includes a port — write only the host name (routes are for port 443 and the proxy's own), ${HOST_EXAMPLE}`;
  if (host === "*") return 'is a wildcard over every host — name the hosts, e.g. "*.example.com"';
  if (host.includes("*")) {
    if (!host.startsWith("*.") || host.slice(2).includes("*"))
      return 'may use "*" only as the whole first label, as in "*.example.com"';
    const base = normaliseDnsName(host.slice(2));
    if (base === undefined) return `is not a valid wildcard host name, ${HOST_EXAMPLE}`;
    if (base.split(".").length < 2)
      return 'is a wildcard over a whole top-level domain — write "*." plus a name of at least two labels, e.g. "*.example.com"';
    return undefined;
  }
  if (host === "*") return 'is a wildcard over every host — name the hosts, e.g. "*.example.com"';
  if (normaliseDnsName(host) === undefined)
    return `is not a valid DNS host name (letters, digits and "-" in dot-separated labels), ${HOST_EXAMPLE}`;
  return undefined;
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

/**
 * A route's path prefix, compared by the egress proxy with the raw bytes of each request path:
 * so it must be written in the one plain spelling a request can match — no dot or empty
 * segments, no percent-escapes, no ";" parameters, no backslash.
 */
export function checkPathPrefix(value: string): string | undefined {
  const example = 'e.g. "/v1/" or "/repos/owner/name"';
  if (!value.startsWith("/")) return `must be a path prefix starting with "/", ${example}`;
  if (/[\s?#]/.test(value))
    return `must be a plain path prefix without spaces, query ("?") or fragment ("#"), ${example}`;
  if (value.includes("%"))
    return `must not contain percent-escapes ("%"): the proxy compares paths exactly as sent and refuses escaped spellings on routes with "paths" — write the plain path, ${example}`;
  if (value.includes("\\") || value.includes(";"))
    return `must not contain "\\" or ";" (servers read them as separators or path parameters), ${example}`;
  if (/[^A-Za-z0-9\-._~!$&'()*+,=:@/]/.test(value))
    return `may contain only ASCII letters, digits, "/" and "-._~!$&'()*+,=:@", ${example}`;
  const segments = value.split("/").slice(1);
  if (segments.some((s) => /^\.+$/.test(s) || s.startsWith("..")))
    return `must not contain "." or ".." segments — write the path they resolve to, ${example}`;
  if (segments.some((s, i) => s === "" && i < segments.length - 1))
    return `must not contain an empty segment ("//"), ${example}`;
  return undefined;
}

/** `ssh://[user@]host[:port]/path` or scp-like `[user@]host:path`; returns the host or a problem. */
export function parseSshUpstream(value: string): { host: string } | { problem: string } {
  const example =
    'write an SSH URL, e.g. "git@github.com:owner/repo.git" or "ssh://git@host:2222/owner/repo.git"';
  if (/^(https?|git|file):\/\//i.test(value))
    return {
      problem: `is not an SSH URL — the git gate pushes over SSH with its own key; ${example}`,
    };
  if (value.startsWith("ssh://")) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return { problem: `is not a valid SSH URL — ${example}` };
    }
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (host === "" || url.pathname === "" || url.pathname === "/")
      return { problem: `needs a host and a repository path — ${example}` };
    return { host };
  }
  const scp = /^(?:[A-Za-z0-9._-]+@)?(\[[^\]]+\]|[^:/@\s]+):([^\s]+)$/.exec(value);
  if (!scp || scp[1] === undefined || scp[2] === undefined || scp[2].startsWith("//"))
    return { problem: `is not an SSH URL — ${example}` };
  return { host: scp[1].replace(/^\[|\]$/g, "") };
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

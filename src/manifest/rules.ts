/**
 * Pure checks on single manifest values. Each returns a problem sentence (what is wrong and what
 * to write instead) or undefined. None of them ever puts the checked value into the sentence:
 * manifests sit next to tokens, and a misplaced token must not be echoed to a terminal or log.
 */
import { isIP } from "node:net";
import { canonicalIp, isIpLiteral, normaliseDnsName } from "../shared/hosts.js";

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

/** Where the git gate reaches an upstream, as git dials it. */
export type GitUpstreamAddress =
  | { kind: "ssh"; user: string; host: string; port: number; path: string }
  | { kind: "https"; host: string; port: number; path: string };

const SSH_EXAMPLES =
  '"git@github.com:owner/repo.git" or "ssh://git@host:2222/owner/repo.git" (SSH, with `known_host_key` and `key`)';
const HTTPS_EXAMPLE = '"https://github.com/owner/repo.git" (HTTPS, with `token_env`)';
const UPSTREAM_FORMS = `write ${SSH_EXAMPLES}, or ${HTTPS_EXAMPLE}`;

/** A host as written in an upstream: a DNS name, an IPv4 address, or an IPv6 one in brackets. */
function upstreamHost(raw: string): string | undefined {
  if (raw.startsWith("[") && raw.endsWith("]")) {
    const inner = raw.slice(1, -1);
    return isIP(inner) === 6 ? canonicalIp(inner) : undefined;
  }
  if (isIP(raw) === 4) return canonicalIp(raw);
  return normaliseDnsName(raw);
}

function upstreamPort(raw: string | undefined, fallback: number): number | undefined {
  if (raw === undefined) return fallback;
  const port = Number(raw);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * A repository path as git hands it to the server. Characters that a URL would read differently
 * (escapes, query, fragment, white space) are refused rather than guessed at, so the path can be
 * written into an ssh:// or https:// URL unchanged.
 */
function checkUpstreamPath(path: string): string | undefined {
  if (/[\s\p{Cc}]/u.test(path)) return "has white space or a control character in its path";
  if (/[%?#\\]/.test(path))
    return 'has "%", "?", "#" or "\\" in its path (write the path plainly: no escapes, query or fragment)';
  if (path.startsWith("-")) return 'has a path starting with "-"';
  if (path.startsWith("//")) return 'has a path starting with "//"';
  return undefined;
}

const SCP_LIKE = /^(?:([^@/:[\]\s]+)@)?(\[[^\]]*\]|[^@/:[\]\s]+):(.*)$/;
const SSH_URL = /^ssh:\/\/(?:([^@/]*)@)?(\[[^\]]*\]|[^@/:[\]]*)(?::([^/]*))?(\/.*)?$/i;
const HTTPS_URL = /^https:\/\/([^/?#]*)([^?#]*)(.*)$/i;
const SSH_USER = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/;

/**
 * Parses a git entry's `upstream`. Three forms, as git itself reads them:
 *
 * - scp-like `[user@]host:path` (`host` may be `[IPv6]`): port 22; `path` exactly as written, so
 *   `git@host:org/repo.git` gives `org/repo.git`, which the server resolves against the login's
 *   home, and `git@host:/srv/x.git` gives `/srv/x.git`.
 * - `ssh://[user@]host[:port]/path`: port 22 unless given; `path` is what git sends the server:
 *   the URL's path (`/srv/x.git`), except that git drops the "/" before a leading "~"
 *   (`ssh://h/~/x.git` and `ssh://h/~bob/x.git` send `~/x.git` and `~bob/x.git`).
 * - `https://host[:port]/path`: port 443 unless given; `path` is the URL's path.
 *
 * SSH forms default the user to `git`. Hosts come back normalised (lower case, IDNA, canonical
 * IP, no brackets). For SSH, `path` is therefore always the argument git gives
 * git-upload-pack/git-receive-pack on the server, and `ssh://user@host:port` + (`path` starting
 * "/" ? `path` : "/" + `path`) is a URL that sends the same bytes — for absolute paths and "~"
 * paths. A relative path (`org/repo.git`) has no exact ssh:// spelling: `ssh://h/org/repo.git`
 * sends `/org/repo.git` (GitHub, GitLab, Gitea and Bitbucket strip the "/", a plain OpenSSH
 * server does not), and `ssh://h/~/org/repo.git` sends `~/org/repo.git` (git-upload-pack expands
 * "~" to the home, GitHub and gitolite refuse it). Only git's bracketed scp form
 * `[user@host:port]:org/repo.git` sends it byte for byte with a port (checked with git 2.39 and a
 * recording GIT_SSH_COMMAND).
 */
export function parseGitUpstream(value: string): GitUpstreamAddress | { problem: string } {
  if (/^http:\/\//i.test(value))
    return {
      problem: `is a plain http:// URL — the git gate refuses unencrypted upstreams; ${UPSTREAM_FORMS}`,
    };
  if (/^https:\/\//i.test(value)) return parseHttpsUpstream(value);
  if (/^ssh:\/\//i.test(value)) {
    const m = SSH_URL.exec(value);
    if (!m) return { problem: `is not a valid SSH URL — ${UPSTREAM_FORMS}` };
    const [, user, host, port, path] = m;
    return sshAddress(user, host ?? "", port, path, true);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /^[a-z][a-z0-9+.-]*::/i.test(value))
    return {
      problem: `uses a transport the git gate does not speak (git://, file:// and others are refused) — it reaches upstreams over SSH or HTTPS only; ${UPSTREAM_FORMS}`,
    };
  const m = SCP_LIKE.exec(value);
  if (!m) return { problem: `is not an SSH or HTTPS URL — ${UPSTREAM_FORMS}` };
  const [, user, host, path] = m;
  // "user:password@host:path" reads as host "user" and path "password@host:path".
  if (user === undefined && /^[^/]*@/.test(path ?? ""))
    return {
      problem: `looks like it carries a password ("user:password@host") — never put credentials in the URL: the gate signs in with \`key\`; ${UPSTREAM_FORMS}`,
    };
  return sshAddress(user, host ?? "", undefined, path, false);
}

function sshAddress(
  rawUser: string | undefined,
  rawHost: string,
  rawPort: string | undefined,
  rawPath: string | undefined,
  url: boolean,
): GitUpstreamAddress | { problem: string } {
  if (rawUser !== undefined && rawUser.includes(":"))
    return {
      problem: `carries a password — never put credentials in the URL: the gate signs in with \`key\`; ${UPSTREAM_FORMS}`,
    };
  if (rawUser !== undefined && !SSH_USER.test(rawUser))
    return {
      problem: `has a user name other than letters, digits, ".", "_" and "-" (not starting with "-") — ${UPSTREAM_FORMS}`,
    };
  const host = upstreamHost(rawHost);
  if (host === undefined)
    return {
      problem: `does not name a host (a DNS name, an IPv4 address, or an IPv6 one in [brackets]) — ${UPSTREAM_FORMS}`,
    };
  const port = upstreamPort(rawPort, 22);
  if (port === undefined || (rawPort !== undefined && !/^[0-9]{1,5}$/.test(rawPort)))
    return { problem: `has a port that is not a number from 1 to 65535 — ${UPSTREAM_FORMS}` };
  const path = url && rawPath?.startsWith("/~") ? rawPath.slice(1) : rawPath;
  if (path === undefined || path === "" || path === "/")
    return { problem: `needs a repository path after the host — ${UPSTREAM_FORMS}` };
  const problem = checkUpstreamPath(path);
  if (problem !== undefined) return { problem: `${problem} — ${UPSTREAM_FORMS}` };
  return { kind: "ssh", user: rawUser ?? "git", host, port, path };
}

function parseHttpsUpstream(value: string): GitUpstreamAddress | { problem: string } {
  const m = HTTPS_URL.exec(value);
  const [, authority = "", path = "", rest = ""] = m ?? [];
  if (authority.includes("@"))
    return {
      problem:
        "carries a user name or password — never put credentials in the URL: name the host variable holding the token in `token_env` (and the user name in `username`)",
    };
  if (rest !== "")
    return {
      problem: `has a query or fragment ("?", "#") — write the repository's URL alone, e.g. ${HTTPS_EXAMPLE}`,
    };
  const hostPort = /^(\[[^\]]*\]|[^:[\]]*)(?::([0-9]{1,5}))?$/.exec(authority);
  const host = hostPort ? upstreamHost(hostPort[1] ?? "") : undefined;
  if (host === undefined)
    return {
      problem: `does not name a host (a DNS name, an IPv4 address, or an IPv6 one in [brackets]) — ${UPSTREAM_FORMS}`,
    };
  const port = upstreamPort(hostPort?.[2], 443);
  if (port === undefined)
    return { problem: `has a port that is not a number from 1 to 65535 — ${UPSTREAM_FORMS}` };
  if (path === "" || path === "/")
    return { problem: `needs a repository path after the host — ${UPSTREAM_FORMS}` };
  const problem = checkUpstreamPath(path);
  if (problem !== undefined) return { problem: `${problem} — ${UPSTREAM_FORMS}` };
  if (/[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/.test(path))
    return {
      problem: `may contain only ASCII letters, digits, "/" and "-._~!$&'()*+,;=:@" in its path — ${UPSTREAM_FORMS}`,
    };
  if (path.split("/").some((s) => s === "." || s === ".."))
    return {
      problem: `has "." or ".." segments in its path — write the path they resolve to, e.g. ${HTTPS_EXAMPLE}`,
    };
  return { kind: "https", host, port, path };
}

/** An SSH upstream's host, or a problem (an HTTPS upstream is a problem here). */
export function parseSshUpstream(value: string): { host: string } | { problem: string } {
  const parsed = parseGitUpstream(value);
  if ("problem" in parsed) return parsed;
  if (parsed.kind !== "ssh")
    return { problem: `is not an SSH URL — write an SSH URL, e.g. ${SSH_EXAMPLES}` };
  return { host: parsed.host };
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

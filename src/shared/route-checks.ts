/**
 * Checks on the values a route or a git upstream is written with, shared by the manifest (on the
 * host) and the supervise server (in the bundle), so a route the agent asks for is held to the
 * same rules as one the operator declares. Each returns a problem sentence (what is wrong and what
 * to write instead) or undefined, and never puts the checked value into the sentence.
 */
import { isIP } from "node:net";
import { canonicalIp, isIpLiteral, normaliseDnsName } from "./hosts.js";

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

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

/**
 * A bottle's git gate, planned: the config the gate serves (one mirror per `git[]` entry, each
 * upstream's transport, pinned key and push policy), the bundle variables that carry its keys and
 * tokens, and the URL rewrites that send the agent's git to the gate when it names an upstream.
 * Pure; no secret value — only the names of the variables that hold them, and the key files'
 * paths (read at launch).
 */
import type { Bottle, GitUpstream } from "../manifest/schema.js";
import { normaliseDnsName, parseGitUpstream } from "../manifest/rules.js";
import {
  DEFAULT_GIT_LIMITS,
  GIT_GATE_PORT,
  type GitGateConfig,
  type GitGateRepo,
} from "../shared/git-gate-config.js";
import { TRUST_CA_PATH } from "../shared/egress-config.js";
import { deployKeyTitle } from "../shared/gitea.js";

/** The bundle variable holding git[i]'s SSH key (read from the key file at launch). */
export function gitKeyEnv(index: number): string {
  return `BOT_BOTTLE_GIT_KEY_${index}`;
}

/** The URL the agent's git reaches a repository at. */
export function gateUrl(name: string): string {
  return `git://git-gate/${name}.git`;
}

/** "type base64" from a host key line, which may start with host names (a known_hosts line). */
export function keyOf(line: string): string {
  const words = line.trim().split(/\s+/);
  const at = words.findIndex((w) => /^(ssh-|ecdsa-|sk-)/.test(w));
  return at < 0 ? line.trim() : words.slice(at, at + 2).join(" ");
}

/**
 * An entry's upstream as the gate dials it. `granted`: the operator handed its key or token over
 * when approving it live (the gate finds them in its private home, not in a bundle variable).
 */
function upstreamOf(
  entry: GitUpstream,
  index: number,
  slug: string,
  granted = false,
): GitGateRepo["upstream"] {
  const parsed = parseGitUpstream(entry.upstream);
  if ("problem" in parsed) throw new Error(`git[${index}].upstream ${parsed.problem}`);
  if (parsed.kind === "ssh")
    return {
      kind: "ssh",
      user: parsed.user,
      host: parsed.host,
      port: parsed.port,
      path: parsed.path,
      knownHostKey: keyOf(entry.known_host_key ?? ""),
      key: granted
        ? { provider: "granted" }
        : entry.key?.provider === "gitea"
          ? {
              provider: "gitea",
              apiUrl: entry.key.api_url,
              repo: entry.key.repo,
              tokenEnv: entry.key.provisioner_token_env,
              title: deployKeyTitle(slug),
            }
          : { provider: "static", env: gitKeyEnv(index) },
    };
  // The URL dialled is built from the parts the host was decided on, never re-read from the text.
  const host = parsed.host.includes(":") ? `[${parsed.host}]` : parsed.host;
  return {
    kind: "https",
    url: `https://${host}${parsed.port === 443 ? "" : `:${parsed.port}`}${parsed.path}`,
    host: parsed.host,
    port: parsed.port,
    username: entry.username,
    ...(entry.token_env ? (granted ? { tokenGranted: true } : { tokenEnv: entry.token_env }) : {}),
  };
}

/** A repository an operator approved for a running bottle, as its gate serves it. */
export function grantedRepo(
  entry: GitUpstream,
  slug: string,
  grant: string,
  expires?: string,
): GitGateRepo {
  return {
    name: entry.name,
    upstream: upstreamOf(entry, 0, slug, true),
    display: entry.upstream,
    push: { refs: [...entry.push.refs], force: entry.push.force, delete: entry.push.delete },
    grant,
    ...(expires ? { expires } : {}),
  };
}

export function gitGateConfigFor(
  bottle: Bottle,
  slug: string,
  heldSecretEnv: string[],
): GitGateConfig {
  const extraHosts: Record<string, string> = {};
  for (const g of bottle.git)
    for (const [host, ip] of Object.entries(g.extra_hosts))
      extraHosts[normaliseDnsName(host) ?? host] = ip;
  return {
    slug,
    port: GIT_GATE_PORT,
    repos: bottle.git.map((g, i) => ({
      name: g.name,
      upstream: upstreamOf(g, i, slug),
      display: g.upstream,
      push: { refs: [...g.push.refs], force: g.push.force, delete: g.push.delete },
    })),
    heldSecretEnv: [
      ...new Set([
        ...heldSecretEnv,
        ...gitSecretNames(bottle),
        ...Object.keys(gitKeyFiles(bottle)),
      ]),
    ],
    extraHosts,
    ...(bottle.egress.trust_ca ? { trustCaFile: TRUST_CA_PATH } : {}),
    limits: { ...DEFAULT_GIT_LIMITS },
  };
}

/**
 * The host variables the gate's credentials come from: HTTPS tokens and Gitea provisioning tokens
 * (static SSH keys come from files).
 */
export function gitSecretNames(bottle: Bottle): string[] {
  return bottle.git.flatMap((g) =>
    g.token_env ? [g.token_env] : g.key?.provider === "gitea" ? [g.key.provisioner_token_env] : [],
  );
}

/** The deploy keys a bottle's gate registers, as stop and cleanup find them again. */
export function giteaKeysOf(
  bottle: Bottle,
  slug: string,
): {
  apiUrl: string;
  repo: string;
  tokenEnv: string;
  title: string;
  extraHosts: Record<string, string>;
}[] {
  return bottle.git.flatMap((g) =>
    g.key?.provider === "gitea"
      ? [
          {
            apiUrl: g.key.api_url,
            repo: g.key.repo,
            tokenEnv: g.key.provisioner_token_env,
            title: deployKeyTitle(slug),
            extraHosts: { ...g.extra_hosts },
          },
        ]
      : [],
  );
}

/** git[i]'s key files by bundle variable: read on the host at launch, never into the agent. */
export function gitKeyFiles(bottle: Bottle): Record<string, string> {
  return Object.fromEntries(
    bottle.git.flatMap((g, i) =>
      g.key?.provider === "static" ? [[gitKeyEnv(i), g.key.path]] : [],
    ),
  );
}

/**
 * The spellings of an upstream an agent's git may meet (a clone command, a workspace's `origin`):
 * as declared, with and without `.git`, and the same repository over ssh and https. Each is
 * rewritten to the gate (`url.<gate>.insteadOf`); git picks the longest match.
 */
export function upstreamSpellings(upstream: string): string[] {
  const parsed = parseGitUpstream(upstream);
  const out = new Set([upstream]);
  const toggled = upstream.endsWith(".git") ? upstream.slice(0, -4) : `${upstream}.git`;
  out.add(toggled);
  if (!("problem" in parsed)) {
    const host = parsed.host.includes(":") ? `[${parsed.host}]` : parsed.host;
    const path = parsed.path.replace(/^\/+/, "").replace(/\.git$/, "");
    // A relative scp-like path ("org/repo.git") is the same repository as https://host/org/repo
    // on the forges people use; an absolute one (/srv/git/x.git) names a server's folder only.
    if (!parsed.path.startsWith("/") || parsed.kind === "https") {
      const user = parsed.kind === "ssh" ? parsed.user : "git";
      for (const suffix of ["", ".git"]) {
        out.add(`${user}@${host}:${path}${suffix}`);
        out.add(`ssh://${user}@${host}/${path}${suffix}`);
        out.add(`https://${host}/${path}${suffix}`);
      }
    }
  }
  return [...out];
}

/** What provisioning writes in the agent's ~/.gitconfig: each upstream's spellings -> the gate. */
export function gitUrlRewrites(bottle: Bottle): { url: string; insteadOf: string[] }[] {
  return bottle.git.map((g) => ({
    url: gateUrl(g.name),
    insteadOf: upstreamSpellings(g.upstream),
  }));
}

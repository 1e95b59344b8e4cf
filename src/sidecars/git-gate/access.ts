/**
 * git daemon's access hook: run before every service with (service, path, host, canonical host,
 * ip, port). A fetch (upload-pack) is served only after the mirror is refreshed from the upstream
 * — when the upstream cannot be reached the fetch fails with the reason and the mirror stays as it
 * was. A push (receive-pack) is let through to the pre-receive hook, which decides it. The first
 * line this prints is what the agent's git shows when the hook refuses.
 */
import { audit, readGateConfig, refresh, repoAt, withMirrorLock } from "./gate.js";

const [service = "", path = ""] = process.argv.slice(2);

function refuse(line: string): never {
  process.stdout.write(`bot-bottle git-gate: ${line}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const started = Date.now();
  const config = readGateConfig();
  const repo = repoAt(config, path);
  const name = path.replace(/^.*\//, "").replace(/\.git$/, "");
  if (!repo) {
    audit({
      repo: name,
      op: "connect",
      decision: "refuse",
      tag: "undeclared",
      reason: `${path} is not a declared repository`,
      ms: Date.now() - started,
    });
    refuse(
      `${path} is not a repository of this bottle (declared: ${config.repos.map((r) => r.name).join(", ")})`,
    );
  }
  if (service === "receive-pack") return;
  if (service !== "upload-pack") refuse(`${service} is not served`);
  const refreshed = await withMirrorLock(repo, config.limits.upstreamTimeoutMs, () =>
    refresh(repo, config.limits.upstreamTimeoutMs),
  ).catch((err: unknown) => ({ ok: false as const, reason: String((err as Error).message) }));
  if (!refreshed.ok) {
    const reason = `upstream ${repo.name} unreachable: ${refreshed.reason}`;
    audit({
      repo: repo.name,
      op: "fetch",
      decision: "refuse",
      tag: "upstream-unreachable",
      reason,
      upstream: refreshed.reason,
      ms: Date.now() - started,
    });
    refuse(reason);
  }
  audit({
    repo: repo.name,
    op: "fetch",
    decision: "allow",
    tag: "served",
    ms: Date.now() - started,
  });
}

main().catch((err: unknown) =>
  refuse(`internal error: ${err instanceof Error ? err.message : String(err)}`),
);

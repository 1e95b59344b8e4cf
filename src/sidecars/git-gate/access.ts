/**
 * git daemon's access hook: run before every service with (service, path, host, canonical host,
 * ip, port). A fetch (upload-pack) is served only after the mirror is refreshed from the upstream
 * — when the upstream cannot be reached the fetch fails with the reason and the mirror stays as it
 * was. A push (receive-pack) is let through to the pre-receive hook, which decides it. The first
 * line this prints is what the agent's git shows when the hook refuses.
 */
import { audit, grantEnded, refresh, repoAt, withMirrorLock } from "./gate.js";
import type { HookCall } from "./hooks.js";

export async function access(call: HookCall): Promise<number> {
  const started = Date.now();
  const { config } = call;
  const [service = "", path = ""] = call.args;
  const refuse = (line: string) => {
    call.stdout(`bot-bottle git-gate: ${line}\n`);
    return 1;
  };
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
    return refuse(
      `${path} is not a repository of this bottle (declared: ${config.repos.map((r) => r.name).join(", ")})`,
    );
  }
  const ended = grantEnded(repo);
  if (ended) {
    audit({
      repo: repo.name,
      op: "connect",
      decision: "refuse",
      tag: "grant-ended",
      reason: ended,
      ms: Date.now() - started,
    });
    return refuse(ended);
  }
  if (service === "receive-pack") return 0;
  if (service !== "upload-pack") return refuse(`${service} is not served`);
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
    return refuse(reason);
  }
  audit({
    repo: repo.name,
    op: "fetch",
    decision: "allow",
    tag: "served",
    ms: Date.now() - started,
  });
  return 0;
}

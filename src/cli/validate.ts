import type { Command } from "commander";
import { hostWarnings } from "../manifest/host-check.js";
import type { Manifest } from "../manifest/index.js";
import { formatPath } from "../manifest/problems.js";
import type { Supervise } from "../manifest/schema.js";
import { formatDuration } from "../shared/duration.js";
import { applyTemplate, type Templated } from "../plan/template.js";
import { loadProvider } from "../providers/templates.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { loadFromOptions, type GlobalOptions } from "./manifest-options.js";

/** "on (wait 2m, timeout 1h, 10 requests a minute, notify: ntfy)"; the program only, not its arguments. */
function describeSupervise(s: Supervise): string {
  if (s === false) return "off";
  const parts = [
    `wait ${formatDuration(s.wait_seconds)}`,
    `timeout ${formatDuration(s.timeout_seconds)}`,
    `${s.rate_per_minute} requests a minute`,
    ...(s.notify ? [`notify: ${s.notify.command[0] ?? ""}`] : []),
  ];
  return `on (${parts.join(", ")})`;
}

function describeBottle(m: Manifest, templateHosts: readonly string[]): string[] {
  const b = m.bottle;
  const lines = [
    `agent   ${m.agent.name} (template ${m.agent.template})`,
    `bottle  ${b.name}`,
    `git user  ${b.git_user ? `${b.git_user.name} <${b.git_user.email}>` : "(not set)"}`,
    `supervise ${describeSupervise(b.supervise)}`,
    `egress routes (${b.egress.routes.length}):`,
  ];
  for (const r of b.egress.routes) {
    const parts = [r.host];
    if (r.methods) parts.push(r.methods.join(","));
    if (r.paths) parts.push(r.paths.join(" "));
    if (r.tls_passthrough) parts.push("(TLS passthrough)");
    if (r.auth) parts.push(`sets ${r.auth.header} from $${r.auth.token_env}`);
    if (templateHosts.includes(r.host)) parts.push(`(from the ${m.agent.template} template)`);
    lines.push(`  - ${parts.join("  ")}`);
  }
  if (b.egress.routes.length === 0) lines.push("  (none: every request is refused)");
  lines.push(`git upstreams (${b.git.length}):`);
  for (const g of b.git) {
    const auth = g.key
      ? `key: ${g.key.provider}`
      : g.token_env
        ? `token from $${g.token_env}`
        : "anonymous";
    const push = g.push.refs.length
      ? `push ${g.push.refs.join(", ")}${g.push.force ? " (force)" : ""}${g.push.delete ? " (delete)" : ""}`
      : "no push";
    lines.push(`  - ${g.name}  ${g.upstream} -> git://git-gate/${g.name}.git  ${auth}  ${push}`);
  }
  return lines;
}

export function registerValidate(program: Command, ctx: CliContext): void {
  program
    .command("validate")
    .description(
      "check the manifest; with --agent, resolve one agent and print its effective bottle",
    )
    .option("--agent <name>", "resolve this agent and print its effective bottle")
    .option("--json", "print the result as JSON")
    .action(async (options: { agent?: string; json?: boolean }, command: Command) => {
      const index = await loadFromOptions(command.optsWithGlobals<GlobalOptions>(), ctx);
      const manifests = options.agent
        ? [index.select(options.agent)]
        : index.agentNames.map((a) => index.select(a));
      // Agents that share a bottle would repeat its warnings: print each place once.
      const warnings = new Set(
        manifests
          .flatMap((m) => hostWarnings(m, ctx.env))
          .map((w) => `warning: ${formatPath(w.path)} ${w.message}`),
      );
      for (const w of warnings) writeLine(ctx.stderr, w);
      // Each agent's template too: a plugin is read and checked, and the template's routes are
      // part of the effective bottle.
      const templated = [];
      for (const m of manifests)
        templated.push(applyTemplate(m, await loadProvider(m.agent.template, ctx.env)));
      if (options.agent) {
        const t = templated[0] as Templated;
        if (options.json) writeLine(ctx.stdout, JSON.stringify(t.manifest, null, 2));
        else
          for (const line of describeBottle(t.manifest, t.templateHosts))
            writeLine(ctx.stdout, line);
        return;
      }
      if (options.json) {
        writeLine(
          ctx.stdout,
          JSON.stringify(
            { file: index.file, valid: true, agents: index.agentNames, bottles: index.bottleNames },
            null,
            2,
          ),
        );
        return;
      }
      const n = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;
      writeLine(
        ctx.stdout,
        `${index.file} is valid: ${n(index.agentNames.length, "agent")} (${index.agentNames.join(", ") || "none"}), ` +
          `${n(index.bottleNames.length, "bottle")} (${index.bottleNames.join(", ") || "none"})`,
      );
    });
}

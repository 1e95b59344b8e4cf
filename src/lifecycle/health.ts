/**
 * A running bottle whose bundle fails its health check, in words: which daemon does not answer
 * (or is restarting), as `ls` shows it and as `doctor` reports it with what to do. Read from the
 * engine's last check, which carries init's report on its daemons.
 */
import type { Backend, BundleHealth } from "../backends/backend.js";
import type { Check } from "../shared/checks.js";
import type { DaemonStatus } from "../shared/init-config.js";
import { listBottles, type BottleSummary } from "./bottles.js";

/** A daemon of an unhealthy bundle and what is wrong with it. */
export interface DaemonTrouble {
  daemon: string;
  /** "not answering", "restarting", "starting", "stopped". */
  problem: string;
  /** Since when it has not answered (RFC 3339), when init says. */
  since?: string;
}

const STATE_WORDS: Record<Exclude<DaemonStatus["state"], "ready">, string> = {
  starting: "starting",
  backoff: "restarting",
  stopped: "stopped",
};

/** What init's last report says is wrong, daemon by daemon; empty when it names none. */
export function daemonTroubles(health: BundleHealth): DaemonTrouble[] {
  return (health.report?.daemons ?? []).flatMap((d): DaemonTrouble[] => {
    if (d.answering === false)
      return [
        {
          daemon: d.name,
          problem: "not answering",
          ...(d.silentSince ? { since: d.silentSince } : {}),
        },
      ];
    if (d.state !== "ready") return [{ daemon: d.name, problem: STATE_WORDS[d.state] }];
    return [];
  });
}

/** "supervise not answering" / "egress restarting" / "supervise, git-gate not answering". */
function troublesText(troubles: readonly DaemonTrouble[]): string {
  const byProblem = new Map<string, string[]>();
  for (const t of troubles)
    byProblem.set(t.problem, [...(byProblem.get(t.problem) ?? []), t.daemon]);
  return [...byProblem].map(([problem, daemons]) => `${daemons.join(", ")} ${problem}`).join("; ");
}

/** What `ls` adds to a running bottle whose bundle is unhealthy; undefined for any other. */
export function healthNote(bottle: BottleSummary): string | undefined {
  const health = bottle.health;
  if (bottle.state !== "running" || health?.status !== "unhealthy") return undefined;
  const troubles = daemonTroubles(health);
  if (troubles.length > 0) return troublesText(troubles);
  return health.output !== undefined ? "init not answering" : "bundle unhealthy";
}

const clock = (iso: string) => iso.slice(0, 19).replace("T", " ");

/** One failing `doctor` line for each running bottle whose bundle is unhealthy. */
export function unhealthyBottleChecks(bottles: readonly BottleSummary[]): Check[] {
  return bottles.flatMap((b): Check[] => {
    const note = healthNote(b);
    if (note === undefined || !b.health) return [];
    const troubles = daemonTroubles(b.health);
    const detail =
      troubles.length > 0
        ? troubles
            .map(
              (t) =>
                `${t.daemon} ${t.problem === "not answering" ? "does not answer its health check" : `is ${t.problem}`}${t.since ? ` (since ${clock(t.since)} UTC)` : ""}`,
            )
            .join("; ") + ": its bundle reports not ready"
        : `its bundle fails its health check (${b.health.output ?? "init reports not ready"})`;
    const superviseDown = troubles.some((t) => t.daemon === "supervise");
    return [
      {
        name: `bottle ${b.slug}`,
        status: "fail",
        detail,
        remedy:
          (superviseDown
            ? "supervise takes no request and applies no decision meanwhile, and the agent's pending requests are not carried over; "
            : "") +
          `\`bot-bottle logs ${b.slug}\` shows init's events; \`bot-bottle stop ${b.slug}\` (its state and audit are kept), then start the agent again`,
      },
    ];
  });
}

/**
 * `doctor`'s lines on the bottles: one per running bottle whose bundle is unhealthy, none while
 * every bundle answers. A listing that fails (no engine) adds nothing: the engine's own line
 * says so.
 */
export async function bottleHealthChecks(
  backends: readonly Backend[],
  env: NodeJS.ProcessEnv,
): Promise<Check[]> {
  const bottles = await listBottles(backends, env).catch(() => []);
  return unhealthyBottleChecks(bottles);
}

/** A running Docker bottle: commands run in its agent container through `docker exec`. */
import type { RunResult } from "../../exec/run.js";
import { HEALTH_PORT } from "../../shared/init-config.js";
import type { LogLine } from "../../shared/logs.js";
import type { AgentReach, AttachOptions, Bottle, ExecOptions, LogOptions } from "../backend.js";
import type { BottleOwner } from "../owner.js";
import type { DockerCli } from "./cli.js";

export function envFlags(env: Record<string, string>): string[] {
  return Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
}

export class DockerBottle implements Bottle {
  constructor(
    private readonly docker: DockerCli,
    private readonly owner: BottleOwner,
    readonly slug: string,
    readonly agentContainer: string,
    /** The bundle's agent-facing ports, by daemon (its ports label). */
    private readonly ports: Readonly<Record<string, number>>,
  ) {}

  /** On the internal network the agent dials each daemon by its alias, the daemon's name. */
  reach(): Promise<AgentReach> {
    const daemons = Object.fromEntries(
      Object.entries(this.ports).map(([name, port]) => [name, { host: name, port }]),
    );
    const first = Object.keys(this.ports)[0] ?? "egress";
    const planned = new Set(Object.values(this.ports));
    const unlisted = [HEALTH_PORT, 22, 80, 8080].find((p) => !planned.has(p)) ?? 1;
    return Promise.resolve({
      daemons,
      unlisted: { host: first, port: unlisted },
      gatewayClosed: true,
    });
  }

  private execArgs(
    argv: readonly string[],
    options: ExecOptions,
    interactive: { stdin: boolean; tty: boolean },
  ): string[] {
    return [
      "exec",
      ...(interactive.stdin ? ["--interactive"] : []),
      ...(interactive.tty ? ["--tty"] : []),
      "--user",
      options.user ?? "node",
      ...(options.workdir ? ["--workdir", options.workdir] : []),
      ...envFlags(options.env ?? {}),
      this.agentContainer,
      ...argv,
    ];
  }

  exec(argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    return this.docker.run(
      this.execArgs(argv, options, { stdin: options.input !== undefined, tty: false }),
      {
        ...(options.input !== undefined ? { input: options.input } : {}),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      },
    );
  }

  attach(argv: readonly string[], options: AttachOptions): Promise<number> {
    return this.docker.runAttached(this.execArgs(argv, options, options));
  }

  async cpIn(source: string, destination: string): Promise<void> {
    await this.docker.run(["cp", source, `${this.agentContainer}:${destination}`]);
  }

  logs(options?: LogOptions): Promise<LogLine[]> {
    return this.owner.logsOf(this.slug, options);
  }

  stop(): Promise<void> {
    return this.owner.stopBottle(this.slug);
  }
}

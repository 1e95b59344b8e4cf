/**
 * A running smolmachines bottle: commands run in the agent's VM through `smolvm machine exec`.
 * smolvm before v1.14 has no `exec --user` and runs every command as the image's USER, which
 * this backend's image sets to root: a command for another user (the agent's `node`) drops to
 * it with `runuser`, HOME set to that user's home.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { run, type RunResult } from "../../exec/run.js";
import type { LogLine } from "../../shared/logs.js";
import type { AgentReach, AttachOptions, Bottle, ExecOptions, LogOptions } from "../backend.js";
import type { BottleOwner } from "../owner.js";
import { hasExecUser, isTransportDrop, type SmolvmCli, type SmolvmVersion } from "./smolvm.js";

/** The agent's user and its home, as the agent images have them. */
const HOMES: Record<string, string> = { node: "/home/node", root: "/root" };

export class SmolBottle implements Bottle {
  constructor(
    private readonly smolvm: SmolvmCli,
    private readonly version: SmolvmVersion,
    private readonly owner: BottleOwner,
    readonly slug: string,
    readonly machine: string,
    /** Where the agent dials its bundle (smolvm's gateway, or the intercepted address). */
    private readonly reachable: AgentReach,
    /** Where commands start unless told otherwise (a container's working directory). */
    private readonly workdir: string | undefined,
  ) {}

  /** The argv and options that run `argv` as `user` on this smolvm. */
  private as(argv: readonly string[], options: ExecOptions) {
    const user = options.user ?? "node";
    const env = { ...(HOMES[user] ? { HOME: HOMES[user], USER: user } : {}), ...options.env };
    const workdir = options.workdir ?? this.workdir;
    if (workdir) options = { ...options, workdir };
    if (hasExecUser(this.version)) return { argv, options: { ...options, env, user } };
    return {
      argv: user === "root" ? argv : ["runuser", "-u", user, "--", ...argv],
      options: { ...options, env, user: undefined },
    };
  }

  async exec(argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    const call = this.as(argv, options);
    return this.smolvm.exec(this.machine, call.argv, call.options);
  }

  attach(argv: readonly string[], options: AttachOptions): Promise<number> {
    const call = this.as(argv, options);
    return this.smolvm.attach(this.machine, call.argv, { ...call.options, tty: options.tty });
  }

  /**
   * Waits, up to `deadlineMs`, until an exec gets through: right after start smolvm's transport
   * may drop the first ones (exit 137, "client disconnected"); `true` is safe to run again.
   */
  async settle(deadlineMs: number): Promise<void> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      try {
        await this.smolvm.exec(this.machine, ["true"], { timeoutMs: 10_000 });
        return;
      } catch (err) {
        if (!isTransportDrop(err) || Date.now() > end) throw err;
      }
    }
  }

  /** smolvm copies single files: a folder goes over as a tar archive, unpacked in the VM. */
  async cpIn(source: string, destination: string): Promise<void> {
    if (!(await stat(source)).isDirectory()) {
      await this.smolvm.cp(source, this.machine, destination);
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), "bot-bottle-cp-"));
    try {
      const archive = join(dir, "folder.tar");
      await run("tar", ["-cf", archive, "-C", source, "."]);
      const inVm = posix.join("/tmp", `bot-bottle-cp-${process.pid}-${Date.now()}.tar`);
      await this.smolvm.cp(archive, this.machine, inVm);
      await this.exec(
        [
          "sh",
          "-c",
          'mkdir -p "$1" && tar -xf "$2" -C "$1"; s=$?; rm -f "$2"; exit $s',
          "sh",
        ].concat([destination, inVm]),
        { user: "root" },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  reach(): Promise<AgentReach> {
    return Promise.resolve(this.reachable);
  }

  logs(options?: LogOptions): Promise<LogLine[]> {
    return this.owner.logsOf(this.slug, options);
  }

  stop(): Promise<void> {
    return this.owner.stopBottle(this.slug);
  }
}

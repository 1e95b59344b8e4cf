/**
 * The `smolvm` CLI, driven exactly as its reference describes (../shared/reference/smolvm.md):
 * argv arrays only, `--name` long, `delete -f`, JSON from `ls`/`status`. smolvm writes every
 * exec's command line to the machine's console log, so no secret is ever put on a command line:
 * a secret reaches the guest by `--secret-env GUEST=HOST_VAR`, its value in smolvm's own
 * environment. SMOLVM_DATA_DIR in the environment re-roots all of smolvm's state.
 */
import { CommandFailedError, run, runAttached, type RunResult } from "../../exec/run.js";

export interface Machine {
  name: string;
  /** created, running, stopped, failed, unreachable or frozen. */
  state: string;
  labels: Record<string, string>;
  created?: string;
}

export interface SmolvmVersion {
  text: string;
  major: number;
  minor: number;
  patch: number;
}

export interface MachineExec {
  /** `-e K=V`: values that may be logged (never a secret). */
  env?: Record<string, string>;
  workdir?: string;
  /** `--timeout`, in whole seconds. */
  timeoutMs?: number;
  input?: string;
  /** `-u NAME`: only on a smolvm that has it (see `hasExecUser`). */
  user?: string;
}

/** The exit status and stderr ending of an exec whose transport dropped (seen right after start). */
const TRANSPORT_DROP_STATUS = 137;
const TRANSPORT_DROP = /client disconnected\s*$/;

export function isTransportDrop(err: unknown): boolean {
  return (
    err instanceof CommandFailedError &&
    err.exitStatus === TRANSPORT_DROP_STATUS &&
    TRANSPORT_DROP.test(err.stderr)
  );
}

export function parseVersion(text: string): SmolvmVersion | undefined {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return undefined;
  return { text: text.trim(), major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

function atLeast(v: SmolvmVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/** `exec -u` arrived around v1.14; older versions run commands as the image's USER. */
export function hasExecUser(v: SmolvmVersion): boolean {
  return atLeast(v, 1, 14);
}

/** `start --egress-interceptor` arrived with v1.14 too. */
export function hasInterceptor(v: SmolvmVersion): boolean {
  return atLeast(v, 1, 14);
}

function envFlags(env: Record<string, string>): string[] {
  return Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
}

export class SmolvmCli {
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  /** Runs smolvm; `secrets` join its environment (for `--secret-env`), never its argv. */
  run(
    args: readonly string[],
    options: { secrets?: Record<string, string>; input?: string; timeoutMs?: number } = {},
  ): Promise<RunResult> {
    return run("smolvm", args, {
      env: { ...this.env, ...options.secrets },
      ...(options.input !== undefined ? { input: options.input } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
  }

  async version(): Promise<SmolvmVersion> {
    const { stdout } = await this.run(["--version"], { timeoutMs: 10_000 });
    const v = parseVersion(stdout);
    if (!v) throw new Error(`smolvm --version printed no version: ${stdout.trim().slice(0, 80)}`);
    return v;
  }

  async list(): Promise<Machine[]> {
    const { stdout } = await this.run(["machine", "ls", "--json"]);
    const parsed = JSON.parse(stdout || "[]") as unknown;
    if (!Array.isArray(parsed)) throw new Error("smolvm machine ls --json did not print a list");
    return parsed.map((m: Partial<Machine> & { created_at?: string }) => {
      const created = m.created ?? m.created_at;
      return {
        name: String(m.name ?? ""),
        state: String(m.state ?? "unreachable"),
        labels: m.labels ?? {},
        ...(created ? { created: String(created) } : {}),
      };
    });
  }

  async status(name: string): Promise<Machine> {
    const { stdout } = await this.run(["machine", "status", "--name", name, "--json"]);
    const m = JSON.parse(stdout) as Partial<Machine>;
    return { name, state: String(m.state ?? "unreachable"), labels: m.labels ?? {} };
  }

  async create(args: readonly string[], secrets: Record<string, string>): Promise<void> {
    await this.run(["machine", "create", ...args], { secrets });
  }

  /** Starts a machine; `interceptor`: the loopback address every admitted flow is handed to
   * (its token in `secrets` as SMOLVM_INTERCEPTOR_TOKEN). */
  async start(name: string, secrets: Record<string, string>, interceptor?: string): Promise<void> {
    await this.run(
      [
        "machine",
        "start",
        "--name",
        name,
        ...(interceptor ? ["--egress-interceptor", interceptor] : []),
      ],
      { secrets, timeoutMs: 120_000 },
    );
  }

  execArgs(
    name: string,
    argv: readonly string[],
    options: MachineExec,
    interactive = "",
  ): string[] {
    return [
      "machine",
      "exec",
      "--name",
      name,
      ...(options.user ? ["-u", options.user] : []),
      ...envFlags(options.env ?? {}),
      ...(options.workdir ? ["-w", options.workdir] : []),
      ...(options.timeoutMs !== undefined
        ? ["--timeout", `${Math.max(1, Math.ceil(options.timeoutMs / 1000))}s`]
        : []),
      ...(interactive ? [interactive] : []),
      "--",
      ...argv,
    ];
  }

  exec(name: string, argv: readonly string[], options: MachineExec = {}): Promise<RunResult> {
    return this.run(this.execArgs(name, argv, options), {
      ...(options.input !== undefined ? { input: options.input } : {}),
      // smolvm ends the command at --timeout; this only bounds a hung transport.
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs + 10_000 } : {}),
    });
  }

  attach(name: string, argv: readonly string[], options: MachineExec & { tty: boolean }) {
    return runAttached("smolvm", this.execArgs(name, argv, options, options.tty ? "-it" : ""), {
      env: this.env,
    });
  }

  async cp(source: string, name: string, destination: string, mode?: string): Promise<void> {
    await this.run([
      "machine",
      "cp",
      source,
      `${name}:${destination}`,
      ...(mode ? ["--mode", mode] : []),
    ]);
  }

  async stop(name: string): Promise<void> {
    await this.run(["machine", "stop", "--name", name], { timeoutMs: 60_000 });
  }

  async delete(name: string): Promise<void> {
    await this.run(["machine", "delete", "--name", name, "-f"], { timeoutMs: 60_000 });
  }
}

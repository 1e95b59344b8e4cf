/**
 * The bundle's PID 1 logic: start the daemons a plan lists, restart one that exits (with backoff
 * and a log line), forward SIGHUP to those that reload, stop them all within a deadline, and say
 * whether every daemon is up. Runs inside the sidecar bundle.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import type { DaemonSpec, InitConfig } from "../../shared/init-config.js";
import type { Logger } from "../log.js";

export type DaemonState = "starting" | "ready" | "backoff" | "stopped";

interface Daemon {
  spec: DaemonSpec;
  child: ChildProcess | undefined;
  state: DaemonState;
  restarts: number;
  startedAt: number;
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

export interface DaemonStatus {
  name: string;
  state: DaemonState;
  pid: number | undefined;
  restarts: number;
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** A daemon that ran this long before exiting starts again from the shortest backoff. */
const STABLE_MS = 10_000;

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export class Supervisor {
  private readonly daemons: Daemon[];
  private stopping = false;
  private announcedReady = false;

  constructor(
    private readonly config: InitConfig,
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.daemons = config.daemons.map((spec) => ({
      spec,
      child: undefined,
      state: "starting",
      restarts: 0,
      startedAt: 0,
      failures: 0,
      timer: undefined,
    }));
  }

  start(): void {
    for (const d of this.daemons) this.spawn(d);
  }

  status(): { ready: boolean; daemons: DaemonStatus[] } {
    const daemons = this.daemons.map((d) => ({
      name: d.spec.name,
      state: d.state,
      pid: d.child?.pid,
      restarts: d.restarts,
    }));
    return { ready: daemons.every((d) => d.state === "ready"), daemons };
  }

  reload(): void {
    for (const d of this.daemons) {
      if (d.spec.reload && d.child?.pid !== undefined) {
        d.child.kill("SIGHUP");
        this.log("reload", `sent SIGHUP to ${d.spec.name}`, { daemon: d.spec.name });
      }
    }
  }

  /** SIGTERM to every daemon, SIGKILL to any still running after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.log("stopping", "stopping daemons");
    const running = this.daemons.filter((d) => {
      clearTimeout(d.timer);
      return d.child && d.child.exitCode === null && d.child.signalCode === null;
    });
    await Promise.all(
      running.map(
        (d) =>
          new Promise<void>((resolve) => {
            const child = d.child as ChildProcess;
            const kill = setTimeout(() => {
              this.log(
                "kill",
                `${d.spec.name} did not stop within ${this.config.stopGraceMs} ms; sending SIGKILL`,
                {
                  daemon: d.spec.name,
                },
              );
              child.kill("SIGKILL");
            }, this.config.stopGraceMs);
            child.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
    for (const d of this.daemons) d.state = "stopped";
    this.log("stopped", "all daemons stopped");
  }

  private spawn(d: Daemon): void {
    const [command, ...args] = d.spec.command;
    if (command === undefined) throw new Error(`daemon ${d.spec.name} has no command`);
    d.state = "starting";
    d.startedAt = Date.now();
    const child = spawn(command, args, { env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    d.child = child;
    this.log("start", `started ${d.spec.name} (pid ${child.pid ?? "?"})`, {
      daemon: d.spec.name,
      pid: child.pid,
    });
    const relay = (stream: NodeJS.ReadableStream | null, channel: string) => {
      let pending = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        pending += chunk;
        let nl = pending.indexOf("\n");
        while (nl >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          // Daemons write typed events already; anything else is wrapped as one.
          if (line.startsWith("{")) process.stdout.write(line + "\n");
          else if (line.trim()) this.log("output", line, { daemon: d.spec.name, channel });
          nl = pending.indexOf("\n");
        }
      });
    };
    relay(child.stdout, "stdout");
    relay(child.stderr, "stderr");
    child.on("error", (err) =>
      this.log("error", `${d.spec.name}: ${err.message}`, { daemon: d.spec.name }),
    );
    child.on("exit", (code, signal) => this.exited(d, child, code, signal));
    void this.waitReady(d, child);
  }

  private async waitReady(d: Daemon, child: ChildProcess): Promise<void> {
    const port = d.spec.port;
    while (d.child === child && child.exitCode === null && !this.stopping) {
      if (port === undefined || (await portOpen(port))) {
        if (d.child !== child || child.exitCode !== null) return;
        d.state = "ready";
        this.log("daemon-ready", `${d.spec.name} is ready${port ? ` on :${port}` : ""}`, {
          daemon: d.spec.name,
          port,
        });
        if (!this.announcedReady && this.status().ready) {
          this.announcedReady = true;
          this.log("ready", "every daemon is ready");
        }
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private exited(
    d: Daemon,
    child: ChildProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    if (d.child !== child) return;
    const how = signal ? `signal ${signal}` : `status ${code}`;
    if (this.stopping) {
      this.log("exit", `${d.spec.name} exited with ${how}`, { daemon: d.spec.name, code, signal });
      return;
    }
    const ranFor = Date.now() - d.startedAt;
    d.failures = ranFor >= STABLE_MS ? 1 : d.failures + 1;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (d.failures - 1));
    d.state = "backoff";
    d.child = undefined;
    this.log(
      "restart",
      `${d.spec.name} exited with ${how} after ${ranFor} ms; restarting in ${delay} ms`,
      {
        daemon: d.spec.name,
        code,
        signal,
        delayMs: delay,
      },
    );
    d.timer = setTimeout(() => {
      if (this.stopping) return;
      d.restarts++;
      this.spawn(d);
    }, delay);
  }
}

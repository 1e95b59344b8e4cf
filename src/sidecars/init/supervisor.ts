/**
 * The bundle's PID 1 logic: start the daemons a plan lists, restart one that exits (with backoff
 * and a log line), probe those that declare a probe, forward SIGHUP to those that reload, start
 * the daemons a re-read config adds, stop them all within a deadline, and say whether every
 * daemon is up and answering. Runs inside the sidecar bundle.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import type {
  DaemonSpec,
  DaemonState,
  DaemonStatus,
  InitConfig,
  InitStatus,
} from "../../shared/init-config.js";
import type { Logger } from "../log.js";
import { addedDaemons } from "./added.js";
import { PROBE_TIMING, probeDaemon, type ProbeTiming } from "./probe.js";

interface Daemon {
  spec: DaemonSpec;
  child: ChildProcess | undefined;
  state: DaemonState;
  restarts: number;
  startedAt: number;
  failures: number;
  timer: NodeJS.Timeout | undefined;
  /** A probed daemon that did not answer its last probe: since when (ms since the epoch). */
  silentSince: number | undefined;
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** A daemon that ran this long before exiting starts again from the shortest backoff. */
const STABLE_MS = 10_000;

/** A daemon init has yet to start. */
function fresh(spec: DaemonSpec): Daemon {
  return {
    spec,
    child: undefined,
    state: "starting",
    restarts: 0,
    startedAt: 0,
    failures: 0,
    timer: undefined,
    silentSince: undefined,
  };
}

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
  private probeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: InitConfig,
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly probeTiming: ProbeTiming = PROBE_TIMING,
  ) {
    this.daemons = config.daemons.map(fresh);
  }

  start(): void {
    for (const d of this.daemons) this.spawn(d);
    if (this.daemons.some((d) => d.spec.probe)) this.scheduleProbes();
  }

  status(): InitStatus {
    const daemons: DaemonStatus[] = this.daemons.map((d) => ({
      name: d.spec.name,
      state: d.state,
      ...(d.child?.pid !== undefined ? { pid: d.child.pid } : {}),
      restarts: d.restarts,
      ...(d.spec.probe ? { answering: d.silentSince === undefined } : {}),
      ...(d.silentSince !== undefined
        ? { silentSince: new Date(d.silentSince).toISOString() }
        : {}),
    }));
    return {
      ready: daemons.every((d) => d.state === "ready" && d.answering !== false),
      daemons,
    };
  }

  reload(): void {
    for (const d of this.daemons) {
      if (d.spec.reload && d.child?.pid !== undefined) {
        d.child.kill("SIGHUP");
        this.log("reload", `sent SIGHUP to ${d.spec.name}`, { daemon: d.spec.name });
      }
    }
  }

  /**
   * Starts the daemons `listed` names (the daemons of a re-read init config) that init does not
   * run, each with a `daemon-added` event, supervised as those it booted with: restarted when they
   * die, probed if they declare a probe, counted in status(). A daemon init runs already is left as
   * it is, even if its spec in `listed` changed: it is not restarted (that would cut what it
   * serves; a daemon that reloads does so on the SIGHUP reload() sends), and keeps, across its own
   * restarts, the spec it started with. A daemon `listed` no longer names keeps running. Returns
   * the names started.
   */
  add(listed: readonly DaemonSpec[]): string[] {
    if (this.stopping) return [];
    const added = addedDaemons(
      this.daemons.map((d) => d.spec.name),
      listed,
    );
    for (const spec of added) {
      const d = fresh(spec);
      this.daemons.push(d);
      this.log("daemon-added", `${spec.name} is new in the init config; starting it`, {
        daemon: spec.name,
        ...(spec.port !== undefined ? { port: spec.port } : {}),
      });
      this.spawn(d);
    }
    // The probe loop runs from start() only when a boot-time daemon declared a probe.
    if (this.probeTimer === undefined && added.some((s) => s.probe)) this.scheduleProbes();
    return added.map((s) => s.name);
  }

  /** SIGTERM to every daemon, SIGKILL to any still running after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.probeTimer);
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

  /** Probes the ready daemons that declare a probe, then waits an interval and does it again. */
  private scheduleProbes(): void {
    this.probeTimer = setTimeout(() => {
      const probed = this.daemons.filter((d) => d.spec.probe && d.state === "ready");
      void Promise.all(probed.map((d) => this.probe(d))).then(() => {
        if (!this.stopping) this.scheduleProbes();
      });
    }, this.probeTiming.intervalMs);
  }

  /** One probe; logged only when the daemon stops answering and when it answers again. */
  private async probe(d: Daemon): Promise<void> {
    const probe = d.spec.probe;
    if (!probe) return;
    const child = d.child;
    const sent = Date.now();
    const failure = await probeDaemon(probe, this.probeTiming.timeoutMs);
    // A daemon that exited meanwhile is init's to restart; its probe says nothing more.
    if (this.stopping || d.child !== child || d.state !== "ready") return;
    const what = `GET ${probe.path} on :${probe.port}`;
    if (failure === undefined && d.silentSince !== undefined) {
      const seconds = Math.round((Date.now() - d.silentSince) / 1000);
      d.silentSince = undefined;
      this.log("daemon-answering", `${d.spec.name} answers ${what} again, after ${seconds} s`, {
        daemon: d.spec.name,
        port: probe.port,
      });
    } else if (failure !== undefined && d.silentSince === undefined) {
      d.silentSince = sent;
      this.log(
        "daemon-silent",
        `${d.spec.name} does not answer ${what} (${failure}): the bundle reports not ready until it does`,
        { daemon: d.spec.name, port: probe.port, reason: failure },
      );
    }
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

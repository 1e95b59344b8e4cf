/**
 * The Docker backend: turns a BottlePlan into two networks and two containers, and back.
 * Launch reads the plan and re-derives nothing; a failure rolls back what it created and reports
 * the first error; everything it creates carries the plan's labels.
 */
import { join } from "node:path";
import { BotBottleError, EXIT } from "../../errors.js";
import { CommandFailedError } from "../../exec/run.js";
import { mergeByTime, parseTimestamped, type LogLine } from "../../shared/logs.js";
import type { Progress } from "../../shared/progress.js";
import { writeFileAtomic } from "../../state/files.js";
import type {
  Backend,
  BundleEvent,
  BundleHealth,
  Check,
  LaunchOptions,
  LogOptions,
  Resource,
} from "../backend.js";
import type { BottlePlan } from "../plan.js";
import { ownerOf } from "../owner.js";
import { DockerBottle, envFlags } from "./bottle.js";
import { ensurePlanImages } from "./user-image.js";
import { dockerChecks } from "./checks.js";
import type { DockerCli } from "./cli.js";
import { checkBridgeIsolation, isolationRefusal } from "./isolation.js";
import { watchContainers, type ContainerWatch } from "./events.js";
import { inspectHealth } from "./health.js";
import { containerOf, dockerResources } from "./resources.js";
import { waitForEvent } from "./wait.js";
import { bundleReady, labelFlags, launchFailure, startBundle } from "./bundle.js";
import { createBottleNetworks } from "./networks.js";
import { machineFull, refuseWithoutMemory } from "./capacity.js";

const STOP_GRACE_SECONDS = 5;

export class IsolationError extends BotBottleError {
  constructor(message: string, remedy: string) {
    super("prerequisite_missing", message, {
      exitCode: EXIT.environment,
      hint: `${remedy} (\`bot-bottle doctor\` runs the same check)`,
    });
    this.name = "IsolationError";
  }
}

export class DockerBackend implements Backend {
  readonly name = "docker" as const;

  constructor(private readonly docker: DockerCli) {}

  /** Every container and network of Docker bottles, optionally of one bottle. */
  async resources(slug?: string): Promise<Resource[]> {
    return (await dockerResources(this.docker, slug)).filter((r) => r.backend === "docker");
  }

  ensureImages(plan: BottlePlan, progress: Progress): Promise<void> {
    return ensurePlanImages(this.docker, plan, progress);
  }

  checks(): Promise<Check[]> {
    return dockerChecks(this.docker);
  }

  /** Docker bottles' containers starting, dying, going or changing health (`docker events`). */
  watch(onChange: () => void): ContainerWatch {
    return watchContainers(this.docker, { backend: this.name, onChange });
  }

  async launch(plan: BottlePlan, options: LaunchOptions): Promise<DockerBottle> {
    const { progress } = options;
    const created = { containers: [] as string[], networks: [] as string[] };
    const internal = plan.networks.internal;
    if (!internal) throw new Error(`the plan of ${plan.slug} has no internal network`);
    await refuseWithoutMemory(this.docker);
    try {
      progress.step(`creating the internal and egress networks (from ${plan.networks.pool.cidr})`);
      await createBottleNetworks(
        this.docker,
        [internal, plan.networks.egress],
        plan.networks.pool,
        (name) => created.networks.push(name),
      );
      // Fail closed: a bridge that holds a host address, or one this host cannot inspect, ends
      // the start (and the networks just made are removed below).
      const bridge = internal.bridge;
      const refusal = isolationRefusal(bridge, checkBridgeIsolation(bridge));
      if (refusal) throw new IsolationError(refusal.message, refusal.remedy);

      progress.step(`starting the sidecar bundle ${plan.bundle.name}`);
      created.containers.push(plan.bundle.name);
      await startBundle(this.docker, plan, options.bundleSecrets, {
        network: plan.networks.egress.name,
      });
      await this.docker.run([
        "network",
        "connect",
        ...plan.bundle.aliases.flatMap((a) => ["--alias", a]),
        internal.name,
        plan.bundle.name,
      ]);

      progress.step(`starting the agent ${plan.agentContainer.name} and waiting for the bundle`);
      const a = plan.agentContainer;
      const agentArgs = [
        "run",
        "--detach",
        "--name",
        a.name,
        "--hostname",
        plan.slug,
        "--init",
        ...labelFlags(a.labels),
        "--network",
        internal.name,
        "--user",
        a.user,
        "--workdir",
        a.workdir,
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--pids-limit",
        String(a.limits.pids),
        "--memory",
        a.limits.memory,
        "--sysctl",
        "net.ipv6.conf.all.disable_ipv6=1",
        "--sysctl",
        "net.ipv6.conf.default.disable_ipv6=1",
        "--volume",
        `${plan.workspace.host}:${plan.workspace.container}`,
        ...a.readOnlyFiles.flatMap((f) => [
          "--mount",
          `type=bind,source=${f.host},target=${f.container},readonly`,
        ]),
        ...envFlags(a.env),
        ...Object.keys(options.placeholders).flatMap((name) => ["--env", name]),
        a.image,
        ...a.command,
      ];
      created.containers.push(a.name);
      const bottle = new DockerBottle(
        this.docker,
        ownerOf(this),
        plan.slug,
        a.name,
        plan.bundle.ports,
      );
      await Promise.all([
        this.docker
          .run(agentArgs, { env: options.placeholders })
          .then(() => options.whileBundleStarts?.(bottle)),
        bundleReady(this.docker, plan),
      ]);
      return bottle;
    } catch (err) {
      await this.remove(created.containers, created.networks).catch(() => undefined);
      if (err instanceof BotBottleError) throw err;
      throw (await machineFull(this.docker, err)) ?? launchFailure(err, plan.slug);
    }
  }

  /** Stops what runs (SIGTERM, SIGKILL after a grace period), keeps the logs, removes it all. */
  async teardown(resources: readonly Resource[], stateDir: string): Promise<void> {
    const containers = resources.filter((r) => r.kind === "container");
    const running = containers.filter((c) => c.state === "running").map((c) => c.name);
    if (running.length)
      await this.docker.run(["stop", "--time", String(STOP_GRACE_SECONDS), ...running], {
        okExitCodes: [0, 1],
      });
    await this.captureLogs(containers, stateDir);
    await this.remove(
      containers.map((c) => c.name),
      resources.filter((r) => r.kind === "network").map((r) => r.name),
    );
  }

  /** Writes each container's log (with timestamps) into <stateDir>/logs/<role>.log. */
  private async captureLogs(containers: readonly Resource[], stateDir: string): Promise<void> {
    await Promise.all(
      containers.map(async (c) => {
        const result = await this.docker
          .run(["logs", "--timestamps", c.name])
          .catch(() => undefined);
        if (result)
          await writeFileAtomic(
            join(stateDir, "logs", `${c.role || c.name}.log`),
            result.stdout + result.stderr,
            0o600,
          );
      }),
    );
  }

  /** Removes containers, then networks; a name already gone is not an error. */
  private async remove(containers: readonly string[], networks: readonly string[]): Promise<void> {
    if (containers.length)
      await this.docker.run(["rm", "--force", "--volumes", ...containers]).catch((err: unknown) => {
        if (!(err instanceof CommandFailedError && /No such container/i.test(err.stderr)))
          throw err;
      });
    await Promise.all(
      networks.map((n) =>
        this.docker.run(["network", "rm", n]).catch((err: unknown) => {
          if (!(err instanceof CommandFailedError && /not found|No such network/i.test(err.stderr)))
            throw err;
        }),
      ),
    );
  }

  handle(slug: string, resources: readonly Resource[]): Promise<DockerBottle | undefined> {
    const agent = containerOf(resources, "agent");
    const bundle = containerOf(resources, "bundle");
    if (!agent || !bundle) return Promise.resolve(undefined);
    return Promise.resolve(
      new DockerBottle(this.docker, ownerOf(this), slug, agent.name, bundle.ports ?? {}),
    );
  }

  async logs(resources: readonly Resource[], options: LogOptions = {}): Promise<LogLine[]> {
    const containers = resources.filter((r) => r.kind === "container");
    if (!options.follow) {
      const streams = await Promise.all(
        containers.map(async (c) => {
          const { stdout, stderr } = await this.docker.run(["logs", "--timestamps", c.name]);
          return parseTimestamped(c.role || c.name, stdout + stderr);
        }),
      );
      const lines = mergeByTime(...streams);
      if (options.onLine) lines.forEach(options.onLine);
      return lines;
    }
    const each = (source: string) => (text: string) => {
      const [line] = parseTimestamped(source, text) as [LogLine?];
      if (line) options.onLine?.(line);
    };
    await Promise.all(
      containers.map((c) =>
        this.docker
          .run(["logs", "--follow", "--timestamps", c.name], {
            onStdoutLine: each(c.role || c.name),
            onStderrLine: each(c.role || c.name),
            ...(options.signal ? { signal: options.signal } : {}),
          })
          .catch(() => undefined),
      ),
    );
    return [];
  }

  bundleHealth(resources: readonly Resource[]): Promise<BundleHealth | undefined> {
    const bundle = containerOf(resources, "bundle");
    return bundle ? inspectHealth(this.docker, bundle.name) : Promise.resolve(undefined);
  }

  async signalBundle(resources: readonly Resource[], signal: "HUP"): Promise<void> {
    await this.docker.run(["kill", "--signal", signal, this.bundleName(resources)]);
  }

  async writeBundleSecret(
    resources: readonly Resource[],
    path: string,
    value: string,
  ): Promise<void> {
    if (!path.startsWith("/tmp/") || path.includes("/../"))
      throw new Error(`a bundle secret goes under /tmp, not ${path}`);
    // The value comes on stdin; the path is an argument, never part of the script.
    await this.docker.run(
      [
        "exec",
        "--interactive",
        this.bundleName(resources),
        "sh",
        "-c",
        'umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && mv -f "$1.tmp" "$1"',
        "sh",
        path,
      ],
      { input: value },
    );
  }

  bundleEvent(
    resources: readonly Resource[],
    match: (event: BundleEvent) => boolean,
    options: { deadlineMs: number; what: string; since?: string },
  ): Promise<BundleEvent> {
    return waitForEvent(
      this.docker,
      this.bundleName(resources),
      match,
      options.deadlineMs,
      options.what,
      options.since,
    );
  }

  private bundleName(resources: readonly Resource[]): string {
    const bundle = containerOf(resources, "bundle");
    if (!bundle) throw new Error("the bottle has no bundle container");
    return bundle.name;
  }
}

/**
 * The Docker backend: turns a BottlePlan into two networks and two containers, and back.
 * Launch reads the plan and re-derives nothing; a failure rolls back what it created and reports
 * the first error; everything it creates carries the plan's labels.
 */
import { join } from "node:path";
import type { Progress } from "../../cli/progress.js";
import { BotBottleError, EXIT } from "../../errors.js";
import { CommandFailedError, type RunResult } from "../../exec/run.js";
import type { BottlePlan, NetworkPlan } from "../../plan/plan.js";
import { LABELS, type Role } from "../../shared/labels.js";
import { writeFileAtomic } from "../../state/files.js";
import type { Bottle, ExecOptions } from "../backend.js";
import type { DockerCli } from "./cli.js";
import { checkBridgeIsolation, isolationRefusal } from "./isolation.js";
import { ReadinessError, waitForEvent } from "./wait.js";

export const BUNDLE_READY_DEADLINE_MS = 15_000;
const STOP_GRACE_SECONDS = 5;

export class LaunchError extends BotBottleError {
  constructor(message: string, hint: string, cause?: unknown) {
    super("command_failed", message, { exitCode: EXIT.internal, hint, cause });
    this.name = "LaunchError";
  }
}

export class IsolationError extends BotBottleError {
  constructor(message: string, remedy: string) {
    super("prerequisite_missing", message, {
      exitCode: EXIT.environment,
      hint: `${remedy} (\`bot-bottle doctor\` runs the same check)`,
    });
    this.name = "IsolationError";
  }
}

/** One container or network bot-bottle created, as found by its labels. */
export interface Resource {
  kind: "container" | "network";
  name: string;
  slug: string;
  role: Role | "";
  stateDir: string;
  /** Containers only: running, exited, created, … */
  state: string;
  agent: string;
  bottle: string;
  created: string;
}

const FIELDS = ["slug", "role", "stateDir", "agent", "bottle"] as const;
const labelColumns = FIELDS.map((f) => `{{.Label "${LABELS[f]}"}}`).join("\t");

function envFlags(env: Record<string, string>): string[] {
  return Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
}

function labelFlags(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
}

export class DockerBackend {
  constructor(private readonly docker: DockerCli) {}

  /** Every container and network carrying bot-bottle's labels, optionally of one bottle. */
  async resources(slug?: string): Promise<Resource[]> {
    const filter = ["--filter", slug ? `label=${LABELS.slug}=${slug}` : `label=${LABELS.slug}`];
    const [containers, networks] = await Promise.all([
      this.docker.run([
        "ps",
        "-a",
        ...filter,
        "--format",
        `{{.Names}}\t{{.State}}\t{{.CreatedAt}}\t${labelColumns}`,
      ]),
      this.docker.run([
        "network",
        "ls",
        ...filter,
        "--format",
        `{{.Name}}\t-\t{{.CreatedAt}}\t${labelColumns}`,
      ]),
    ]);
    const parse = (kind: Resource["kind"], out: string): Resource[] =>
      out
        .split("\n")
        .filter((l) => l.trim())
        .map((line) => {
          const [
            name = "",
            state = "",
            created = "",
            s = "",
            role = "",
            stateDir = "",
            agent = "",
            bottle = "",
          ] = line.split("\t");
          return {
            kind,
            name,
            state,
            created,
            slug: s,
            role: role as Role,
            stateDir,
            agent,
            bottle,
          };
        });
    return [...parse("container", containers.stdout), ...parse("network", networks.stdout)];
  }

  async launch(
    plan: BottlePlan,
    options: {
      progress: Progress;
      /** Values of the bundle's secret variables (plan.bundle.secretEnv and fileSecretEnv). */
      bundleSecrets: Record<string, string>;
      /** Values of the agent's placeholder variables (plan.agentContainer.placeholderEnv). */
      placeholders: Record<string, string>;
      /** Work that needs only the running agent, started as soon as it runs, alongside the wait
       * for the bundle's readiness; launch fails (and rolls back) when it fails. */
      whileBundleStarts?: (bottle: DockerBottle) => Promise<void>;
    },
  ): Promise<DockerBottle> {
    const { progress } = options;
    const created = { containers: [] as string[], networks: [] as string[] };
    try {
      progress.step("creating the internal and egress networks");
      await Promise.all(
        [plan.networks.internal, plan.networks.egress].map(async (n) => {
          await this.createNetwork(n);
          created.networks.push(n.name);
        }),
      );
      // Fail closed: a bridge that holds a host address, or one this host cannot inspect, ends
      // the start (and the networks just made are removed below).
      const bridge = plan.networks.internal.bridge;
      const refusal = isolationRefusal(bridge, checkBridgeIsolation(bridge));
      if (refusal) throw new IsolationError(refusal.message, refusal.remedy);

      progress.step(`starting the sidecar bundle ${plan.bundle.name}`);
      const bundleArgs = [
        "run",
        "--detach",
        "--name",
        plan.bundle.name,
        "--hostname",
        "bundle",
        ...labelFlags(plan.bundle.labels),
        "--network",
        plan.networks.egress.name,
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--memory",
        plan.bundle.limits.memory,
        "--memory-swap",
        plan.bundle.limits.memory,
        "--pids-limit",
        String(plan.bundle.limits.pids),
        "--cpus",
        String(plan.bundle.limits.cpus),
        "--volume",
        `${join(plan.stateDir, plan.bundle.configDir)}:/etc/bot-bottle:ro`,
        "--volume",
        `${join(plan.stateDir, plan.bundle.auditDir)}:${plan.bundle.auditMount}`,
        ...envFlags(plan.bundle.env),
        // Secrets: name only on argv; docker reads the value from its own environment.
        ...Object.keys(options.bundleSecrets).flatMap((name) => ["--env", name]),
        plan.bundle.image,
      ];
      created.containers.push(plan.bundle.name);
      await this.docker.run(bundleArgs, { env: options.bundleSecrets });
      await this.docker.run([
        "network",
        "connect",
        ...plan.bundle.aliases.flatMap((a) => ["--alias", a]),
        plan.networks.internal.name,
        plan.bundle.name,
      ]);
      for (const network of plan.bundle.extraNetworks) {
        try {
          await this.docker.run(["network", "connect", network, plan.bundle.name]);
        } catch (err) {
          throw new LaunchError(
            `the sidecar bundle could not join the network "${network}" (bottles.${plan.bottle.name}.egress.network): ${err instanceof CommandFailedError ? err.stderr.trim().split("\n")[0] : String(err)}`,
            "create that Docker network first, or remove egress.network from the bottle",
            err,
          );
        }
      }

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
        plan.networks.internal.name,
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
      const bottle = new DockerBottle(this.docker, plan.slug, a.name, plan.bundle.name);
      await Promise.all([
        this.docker
          .run(agentArgs, { env: options.placeholders })
          .then(() => options.whileBundleStarts?.(bottle)),
        waitForEvent(
          this.docker,
          plan.bundle.name,
          "ready",
          BUNDLE_READY_DEADLINE_MS,
          `the sidecar bundle ${plan.bundle.name}`,
        ),
      ]);
      return bottle;
    } catch (err) {
      await this.remove(created.containers, created.networks).catch(() => undefined);
      if (err instanceof BotBottleError) throw err;
      if (err instanceof ReadinessError)
        throw new LaunchError(
          err.message,
          `\`bot-bottle logs ${plan.slug}\` shows the captured bundle log`,
          err,
        );
      throw err;
    }
  }

  private async createNetwork(n: NetworkPlan): Promise<void> {
    await this.docker.run([
      "network",
      "create",
      "--driver",
      "bridge",
      ...(n.internal ? ["--internal", "--opt", "com.docker.network.bridge.inhibit_ipv4=true"] : []),
      "--opt",
      `com.docker.network.bridge.name=${n.bridge}`,
      ...labelFlags(n.labels),
      n.name,
    ]);
  }

  /** Stops containers (SIGTERM, then SIGKILL after a grace period). */
  async stopContainers(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.docker.run(["stop", "--time", String(STOP_GRACE_SECONDS), ...names], {
      okExitCodes: [0, 1],
    });
  }

  /** Writes each container's log (with timestamps) into <stateDir>/logs/<role>.log. */
  async captureLogs(containers: readonly Resource[], stateDir: string): Promise<void> {
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
  async remove(containers: readonly string[], networks: readonly string[]): Promise<void> {
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

  handle(slug: string, resources: readonly Resource[]): DockerBottle | undefined {
    const agent = resources.find((r) => r.kind === "container" && r.role === "agent");
    const bundle = resources.find((r) => r.kind === "container" && r.role === "bundle");
    if (!agent || !bundle) return undefined;
    return new DockerBottle(this.docker, slug, agent.name, bundle.name);
  }
}

export class DockerBottle implements Bottle {
  constructor(
    private readonly docker: DockerCli,
    readonly slug: string,
    readonly agentContainer: string,
    readonly bundleContainer: string,
  ) {}

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

  /** Runs a command with this terminal attached; resolves to its exit status. */
  attach(
    argv: readonly string[],
    options: ExecOptions & { tty: boolean; stdin: boolean },
  ): Promise<number> {
    return this.docker.runAttached(this.execArgs(argv, options, options));
  }

  async cpIn(source: string, destination: string): Promise<void> {
    await this.docker.run(["cp", source, `${this.agentContainer}:${destination}`]);
  }
}

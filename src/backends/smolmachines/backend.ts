/**
 * The smolmachines backend: the agent is a smolvm microVM (its own kernel: a hardware boundary,
 * not a shared one), and the sidecar bundle is the same container as with Docker, on its own
 * egress network, with its agent-facing ports published on random 127.0.0.1 ports. The VM's
 * network is smolvm's virtio-net with an allow-list holding only smolvm's gateway, which
 * re-dials a flow to the host's loopback on the same port: the agent reaches the bundle at
 * host.smolvm.internal:<published port>. README ("The smolmachines backend") lists what that
 * leaves open and what the Docker backend closes instead.
 */
import { randomBytes } from "node:crypto";
import { PrerequisiteError } from "../../errors.js";
import { HEALTH_PORT } from "../../shared/init-config.js";
import { CommandNotFoundError } from "../../exec/run.js";
import type { Check } from "../../shared/checks.js";
import { AGENT_KEY_USER } from "../../shared/egress-config.js";
import { LABELS, type Role } from "../../shared/labels.js";
import type { LogLine } from "../../shared/logs.js";
import type { Progress } from "../../shared/progress.js";
import { cacheRoot } from "../../state/paths.js";
import type {
  Backend,
  BundleEvent,
  BundleHealth,
  LaunchOptions,
  LogOptions,
  Resource,
} from "../backend.js";
import { withBundleAddresses, type BottlePlan } from "../plan.js";
import { DockerBackend } from "../docker/backend.js";
import { ensurePlanImages } from "../docker/user-image.js";
import { bundleReady, launchFailure, publishedPort, startBundle } from "../docker/bundle.js";
import type { DockerCli } from "../docker/cli.js";
import { watchContainers, type ContainerWatch } from "../docker/events.js";
import { createBottleNetworks } from "../docker/networks.js";
import { machineFull, refuseWithoutMemory } from "../docker/capacity.js";
import { containerOf, dockerResources } from "../docker/resources.js";
import { ownerOf } from "../owner.js";
import { SmolBottle } from "./bottle.js";
import { allowFlags, dialAddress, reachOf, type VmRoute } from "./route.js";
import { smolvmChecks } from "./checks.js";
import { agentArchive } from "./image.js";
import { hasInterceptor, type Machine, type SmolvmCli, type SmolvmVersion } from "./smolvm.js";

/** How long the first exec after start may keep meeting smolvm's dropped transport. */
const SETTLE_MS = 30_000;

/** "4g" -> 4096, "512m" -> 512 (MiB, as `--mem` takes them). */
export function mebibytes(size: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(size.trim());
  if (!m) throw new Error(`not a memory size: ${size}`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "").toLowerCase();
  return unit === "g"
    ? n * 1024
    : unit === "m"
      ? n
      : unit === "k"
        ? Math.ceil(n / 1024)
        : Math.ceil(n / 1024 ** 2);
}

function machineResource(m: Machine): Resource | undefined {
  const slug = m.labels[LABELS.slug];
  if (!slug || m.labels[LABELS.backend] !== "smolmachines") return undefined;
  return {
    kind: "machine",
    name: m.name,
    slug,
    role: (m.labels[LABELS.role] ?? "") as Role | "",
    stateDir: m.labels[LABELS.stateDir] ?? "",
    state: m.state,
    agent: m.labels[LABELS.agent] ?? "",
    bottle: m.labels[LABELS.bottle] ?? "",
    created: m.created ?? "",
    backend: "smolmachines",
    ...(m.labels[LABELS.workdir] ? { workdir: m.labels[LABELS.workdir] } : {}),
    ...(m.labels[LABELS.route] ? { route: m.labels[LABELS.route] } : {}),
  };
}

export class SmolBackend implements Backend {
  readonly name = "smolmachines" as const;
  /** The bundle, its network and its logs are Docker's, handled as Docker handles them. */
  private readonly containers: DockerBackend;

  constructor(
    private readonly smolvm: SmolvmCli,
    private readonly docker: DockerCli,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.containers = new DockerBackend(docker);
  }

  /** smolvm's version; a clear refusal when it is not installed. */
  private async smolvmVersion(): Promise<SmolvmVersion> {
    try {
      return await this.smolvm.version();
    } catch (err) {
      if (err instanceof CommandNotFoundError)
        throw new PrerequisiteError(
          "the smolmachines backend needs smolvm, which is not installed",
          "install smolvm (https://smolmachines.com), or start the bottle with --backend docker",
        );
      throw err;
    }
  }

  private async machines(slug?: string): Promise<Resource[]> {
    const list = await this.smolvm.list().catch((err: unknown) => {
      if (err instanceof CommandNotFoundError) return [];
      throw err;
    });
    return list
      .map(machineResource)
      .filter((r): r is Resource => r !== undefined && (!slug || r.slug === slug));
  }

  async resources(slug?: string): Promise<Resource[]> {
    const [containers, machines] = await Promise.all([
      dockerResources(this.docker, slug),
      this.machines(slug),
    ]);
    return [...containers.filter((r) => r.backend === "smolmachines"), ...machines];
  }

  async ensureImages(plan: BottlePlan, progress: Progress): Promise<void> {
    await this.smolvmVersion();
    await ensurePlanImages(this.docker, plan, progress);
    await agentArchive(this.docker, plan.agentContainer.image, this.archiveDir(), progress);
  }

  private archiveDir(): string {
    return `${cacheRoot(this.env)}/smolmachines`;
  }

  checks(): Promise<Check[]> {
    return smolvmChecks(this.env);
  }

  /**
   * The bundles' containers, as Docker's are watched. smolvm has no event stream: a machine's
   * own change is seen only through its bundle (a bottle's stop removes both); a machine that
   * stops by itself while its bundle runs goes unseen until the next listing.
   */
  watch(onChange: () => void): ContainerWatch {
    return watchContainers(this.docker, { backend: this.name, onChange });
  }

  async launch(plan: BottlePlan, options: LaunchOptions): Promise<SmolBottle> {
    const { progress } = options;
    const version = await this.smolvmVersion();
    const archive = await agentArchive(
      this.docker,
      plan.agentContainer.image,
      this.archiveDir(),
      progress,
    );
    const a = plan.agentContainer;
    const intercept = plan.bundle.interceptor;
    // The intercept daemon's token, made for this start: the bundle and smolvm alone hold it.
    const token = randomBytes(32).toString("hex");
    const bundleSecrets = {
      ...options.bundleSecrets,
      ...(intercept ? { [intercept.tokenEnv]: token } : {}),
    };
    let machine = false;
    await refuseWithoutMemory(this.docker);
    try {
      progress.step(
        `creating the egress network and starting the sidecar bundle ${plan.bundle.name}`,
      );
      await createBottleNetworks(
        this.docker,
        [plan.networks.egress],
        plan.networks.pool,
        () => undefined,
      );
      const ports = [...Object.values(plan.bundle.ports), ...(intercept ? [intercept.port] : [])];
      await startBundle(this.docker, plan, bundleSecrets, {
        network: plan.networks.egress.name,
        publish: ports,
      });
      const published = new Map<number, number>();
      for (const port of ports)
        published.set(port, await publishedPort(this.docker, plan.bundle.name, port));
      const route: VmRoute =
        intercept && hasInterceptor(version)
          ? { kind: "interceptor" }
          : { kind: "gateway", published };

      // The agent presents its proxy key as the user part of the bundle's address.
      const keyName = plan.egress.agentKeyEnv;
      const key = keyName ? options.bundleSecrets[keyName] : undefined;
      if (keyName && !key) throw new Error(`launch was given no value for ${keyName}`);
      const userinfo = key ? `${AGENT_KEY_USER}:${key}@` : "";
      const env = withBundleAddresses(a.env, (port) => userinfo + dialAddress(route, port));
      // Values that hold a secret (the key) reach the VM by name, never on smolvm's argv.
      const secret = (v: string) => key !== undefined && v.includes(key);
      const vmSecrets: Record<string, string> = { ...options.placeholders };
      for (const [k, v] of Object.entries(env)) if (secret(v)) vmSecrets[k] = v;

      progress.step(
        `creating and starting the agent VM ${a.name} (smolvm ${version.major}.${version.minor}.${version.patch}, ${route.kind === "interceptor" ? "every flow through the bundle's interceptor" : "smolvm's gateway"})`,
      );
      await this.smolvm.create(
        [
          "--name",
          a.name,
          "--image",
          archive,
          "--mem",
          String(mebibytes(a.limits.memory)),
          "-v",
          `${plan.workspace.host}:${plan.workspace.container}`,
          ...Object.entries(env)
            .filter(([, v]) => !secret(v))
            .flatMap(([k, v]) => ["-e", `${k}=${v}`]),
          // Placeholders and the key reach the VM by name: smolvm reads the values from its own
          // environment.
          ...Object.keys(vmSecrets).flatMap((name) => ["--secret-env", `${name}=${name}`]),
          ...allowFlags(route),
          ...Object.entries({ ...a.labels, [LABELS.route]: route.kind }).flatMap(([k, v]) => [
            "--label",
            `${k}=${v}`,
          ]),
        ],
        vmSecrets,
      );
      machine = true;
      if (route.kind === "interceptor" && intercept)
        await this.smolvm.start(
          a.name,
          { ...vmSecrets, SMOLVM_INTERCEPTOR_TOKEN: token },
          `127.0.0.1:${published.get(intercept.port) ?? 0}`,
        );
      else await this.smolvm.start(a.name, vmSecrets);
      const bottle = this.bottle(version, plan.slug, a.name, a.workdir, route, plan.bundle.ports);
      progress.step(`waiting for the agent VM and the bundle`);
      await Promise.all([
        bottle.settle(SETTLE_MS).then(() => options.whileBundleStarts?.(bottle)),
        bundleReady(this.docker, plan),
      ]);
      return bottle;
    } catch (err) {
      if (machine) await this.removeMachine(a.name).catch(() => undefined);
      await this.containers
        .teardown(await dockerResources(this.docker, plan.slug), plan.stateDir)
        .catch(() => undefined);
      throw (await machineFull(this.docker, err)) ?? launchFailure(err, plan.slug);
    }
  }

  private bottle(
    version: SmolvmVersion,
    slug: string,
    machine: string,
    workdir: string | undefined,
    route: VmRoute,
    ports: Readonly<Record<string, number>>,
  ): SmolBottle {
    const planned = new Set(Object.values(ports));
    const unlisted = [HEALTH_PORT, 22, 80, 8080].find((p) => !planned.has(p)) ?? 1;
    return new SmolBottle(
      this.smolvm,
      version,
      ownerOf(this),
      slug,
      machine,
      reachOf(route, ports, unlisted),
      workdir,
    );
  }

  private async removeMachine(name: string): Promise<void> {
    await this.smolvm.stop(name).catch(() => undefined);
    await this.smolvm.delete(name);
  }

  async teardown(resources: readonly Resource[], stateDir: string): Promise<void> {
    for (const m of resources.filter((r) => r.kind === "machine")) await this.removeMachine(m.name);
    await this.containers.teardown(
      resources.filter((r) => r.kind !== "machine"),
      stateDir,
    );
  }

  async handle(slug: string, resources: readonly Resource[]): Promise<SmolBottle | undefined> {
    const machine = resources.find((r) => r.kind === "machine" && r.role === "agent");
    const bundle = containerOf(resources, "bundle");
    if (!machine || !bundle) return undefined;
    const ports = bundle.ports ?? {};
    let route: VmRoute = { kind: "interceptor" };
    if (machine.route !== "interceptor") {
      const published = new Map<number, number>();
      for (const port of Object.values(ports))
        published.set(port, await publishedPort(this.docker, bundle.name, port));
      route = { kind: "gateway", published };
    }
    const version = await this.smolvmVersion();
    return this.bottle(version, slug, machine.name, machine.workdir, route, ports);
  }

  logs(resources: readonly Resource[], options?: LogOptions): Promise<LogLine[]> {
    return this.containers.logs(
      resources.filter((r) => r.kind !== "machine"),
      options,
    );
  }

  /** The bundle is a container here too, with the same health check. */
  bundleHealth(resources: readonly Resource[]): Promise<BundleHealth | undefined> {
    return this.containers.bundleHealth(resources);
  }

  signalBundle(resources: readonly Resource[], signal: "HUP"): Promise<void> {
    return this.containers.signalBundle(resources, signal);
  }

  writeBundleSecret(resources: readonly Resource[], path: string, value: string): Promise<void> {
    return this.containers.writeBundleSecret(resources, path, value);
  }

  bundleEvent(
    resources: readonly Resource[],
    match: (event: BundleEvent) => boolean,
    options: { deadlineMs: number; what: string; since?: string },
  ): Promise<BundleEvent> {
    return this.containers.bundleEvent(resources, match, options);
  }
}

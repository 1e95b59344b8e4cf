/**
 * Manifest -> BottlePlan (the type a backend reads, backends/plan.ts): everything launch needs,
 * computed once and without side effects, so it can be printed as the preflight summary.
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, posix, resolve as resolvePath } from "node:path";
import { UsageError } from "../errors.js";
import type { Manifest } from "../manifest/index.js";
import { AGENT_KEY_ENV, AUDIT_DIR, CA_KEY_ENV } from "../shared/egress-config.js";
import {
  BUNDLE_VM_ADDRESS,
  INTERCEPT_CONFIG_PATH,
  INTERCEPT_PORT,
  INTERCEPT_TOKEN_ENV,
  type InterceptConfig,
} from "../shared/intercept-config.js";
import {
  BUNDLE_ROOT,
  HEALTH_PORT,
  INIT_CONFIG_PATH,
  type DaemonSpec,
  type InitConfig,
} from "../shared/init-config.js";
import { LABEL_SCHEMA_VERSION, LABELS, type Role } from "../shared/labels.js";
import { templateImage } from "../backends/images.js";
import { addressPoolOf, type AddressPool } from "../backends/address-pool.js";
import {
  bundleAddress,
  userImageRef,
  type AgentImagePlan,
  type BackendName,
  type BottlePlan,
  type TrustedFile,
} from "../backends/plan.js";
import type { AgentProvider, AgentSession } from "../providers/provider.js";
import { agentEgressEnv, egressConfigFor, routeSecretNames, tokenEnvNames } from "./egress.js";
import { applyTemplate } from "./template.js";
import {
  giteaKeysOf,
  gitGateConfigFor,
  gitKeyFiles,
  gitSecretNames,
  gitUrlRewrites,
} from "./git.js";
import { GIT_GATE_PORT, GIT_GATE_ROOT } from "../shared/git-gate-config.js";
import { SUPERVISE_HEALTH_PATH, SUPERVISE_PORT } from "../shared/supervise.js";
import { superviseConfigFor } from "./supervise.js";

export const AGENT_USER = "node";
/** The agent user's ids in the agent images, kept when the workspace belongs to root. */
export const AGENT_UID = 1000;
export const AGENT_HOME = "/home/node";
export const WORKSPACE = "/home/node/workspace";
export const EGRESS_PORT = 9099;
export const BUNDLE_UID = 10001;
/** Names the agent reaches the bundle by, on the internal network. */
export const BUNDLE_ALIASES = ["egress", "git-gate", "supervise"] as const;

/**
 * The git gate as init runs it: in the bundle from the start when the manifest declares
 * repositories, added to a running one when an operator grants the first (SIGHUP reloads it).
 */
export const GIT_GATE_DAEMON: DaemonSpec = {
  name: "git-gate",
  command: ["node", `${BUNDLE_ROOT}/sidecars/git-gate/main.js`],
  port: GIT_GATE_PORT,
  reload: true,
};

export interface PlanInput {
  /** The random part of the slug: lower-case letters and digits. */
  id: string;
  workspace: string;
  stateRoot: string;
  images: { bundle: string };
  /** The backend named on the command line (`start --backend`), over the bottle's own. */
  backend?: BackendName;
  /** The agent's template, loaded (a user plugin's is read from disk); a built-in's by default. */
  provider?: AgentProvider;
  /** Who owns the workspace folder, and its permission bits: the agent runs as its owner. */
  workspaceOwner: { uid: number; gid: number; mode: number };
  /** Where the bottle's networks take their subnets (BOT_BOTTLE_SUBNET_POOL); the default's if absent. */
  addressPool?: AddressPool;
}

/** The state-dir file listing a bottle's trusted files, checked by later starts and applies. */
export const TRUSTED_FILE = "trusted.json";

/**
 * Every host file the operator's side trusts for this agent: the manifest itself (re-read by
 * `egress apply`), the upstream CA, the git gate's key files and the agent's Dockerfile.
 */
/** The trusted files that lie directly in `workspace` (not in a folder below it). */
export function shieldedFiles(trusted: readonly TrustedFile[], workspace: string): string[] {
  const root = resolvePath(workspace);
  return [...new Set(trusted.map((f) => resolvePath(f.path)).filter((p) => dirname(p) === root))];
}

export function trustedFiles(manifest: Manifest): TrustedFile[] {
  const b = `bottles.${manifest.bottle.name}`;
  return [
    { what: "the manifest", path: manifest.file },
    ...(manifest.bottle.egress.trust_ca
      ? [{ what: `${b}.egress.trust_ca`, path: manifest.bottle.egress.trust_ca }]
      : []),
    ...manifest.bottle.git.flatMap((g, i) =>
      g.key?.provider === "static" ? [{ what: `${b}.git[${i}].key.path`, path: g.key.path }] : [],
    ),
    ...(manifest.agent.dockerfile
      ? [{ what: `agents.${manifest.agent.name}.dockerfile`, path: manifest.agent.dockerfile }]
      : []),
    ...(manifest.bottle.dockerfile
      ? [{ what: `${b}.dockerfile`, path: manifest.bottle.dockerfile }]
      : []),
    ...(manifest.agent.skills ?? []).map((path, i) => ({
      what: `agents.${manifest.agent.name}.skills[${i}]`,
      path,
    })),
  ];
}

/**
 * The agent's image: the template's, then the provider's own layers (a plugin's Dockerfile),
 * then the agent's and the bottle's Dockerfiles layered on it. A cascade is named by its
 * Dockerfiles' paths; whether it is current is the build's to say (a content hash per layer).
 */
export function agentImagePlan(
  manifest: Manifest,
  provider: Pick<AgentProvider, "image" | "layers">,
): AgentImagePlan {
  const template = provider.image;
  const layers = [
    ...(provider.layers ?? []),
    ...(manifest.agent.dockerfile
      ? [
          {
            what: `agents.${manifest.agent.name}.dockerfile`,
            dockerfile: manifest.agent.dockerfile,
          },
        ]
      : []),
    ...(manifest.bottle.dockerfile
      ? [
          {
            what: `bottles.${manifest.bottle.name}.dockerfile`,
            dockerfile: manifest.bottle.dockerfile,
          },
        ]
      : []),
  ];
  const templateRef = `bot-bottle/${template}:latest`;
  if (layers.length === 0) return { template, layers, ref: templateRef };
  const id = createHash("sha256")
    .update([template, ...layers.map((l) => resolvePath(l.dockerfile))].join("\0"))
    .digest("hex")
    .slice(0, 12);
  return { template, layers, ref: `bot-bottle/${template}-custom:${id}` };
}

export const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

export function newId(random: (n: number) => Buffer, length = 6): string {
  return [...random(length)].map((b) => ID_ALPHABET[b % ID_ALPHABET.length]).join("");
}

/** Each token variable under its own name, and the provider's key variable for its host. */
function placeholderEnv(manifest: Manifest, provider: AgentProvider): Record<string, string> {
  const out: Record<string, string> = {};
  const forwarded = manifest.agent.forward_host_credentials;
  const login = new Set(forwarded ? (provider.hostLogin?.secretEnv ?? []) : []);
  for (const name of tokenEnvNames(manifest.bottle)) if (!login.has(name)) out[name] = name;
  // A forwarded login is read from the agent's login file: its CLI gets no key variable.
  const key = forwarded ? undefined : provider.apiKey;
  const route = key && manifest.bottle.egress.routes.find((r) => r.host.toLowerCase() === key.host);
  if (key && route?.auth) out[key.env] = route.auth.token_env;
  return out;
}

export function planBottle(given: Manifest, input: PlanInput): BottlePlan {
  if (!/^[a-z0-9]{4,12}$/.test(input.id)) throw new Error(`invalid bottle id ${input.id}`);
  const templated = applyTemplate(given, input.provider);
  const { manifest, provider } = templated;
  /** The bundle's agent-facing ports, by daemon. */
  const gate = manifest.bottle.git.length > 0;
  // A VM would reach supervise at an address only launch knows, and its provisioned files
  // cannot say it yet: supervise serves Docker bottles.
  const superviseOn =
    manifest.bottle.supervise !== false &&
    (input.backend ?? manifest.bottle.backend) !== "smolmachines";
  // A bottle whose agent may ask for a git repository (supervise) gets the gate's config and a
  // folder for mirrors from the start; its daemon runs from the first repository on.
  const gateReady = gate || superviseOn;
  const ports: Record<string, number> = {
    egress: EGRESS_PORT,
    ...(gate ? { "git-gate": GIT_GATE_PORT } : {}),
    ...(superviseOn ? { supervise: SUPERVISE_PORT } : {}),
  };
  const supervise = ports["supervise"];
  const session: AgentSession = {
    home: AGENT_HOME,
    workspace: WORKSPACE,
    ...(manifest.agent.model !== undefined ? { model: manifest.agent.model } : {}),
    ...(manifest.agent.prompt !== undefined ? { prompt: manifest.agent.prompt } : {}),
    ...(manifest.agent.forward_host_credentials ? { forwardedLogin: true } : {}),
    // The agent is registered with the supervise MCP server when its bundle serves one.
    ...(supervise !== undefined
      ? { mcpServers: { supervise: `http://supervise:${supervise}/mcp` } }
      : {}),
  };
  const cli = templateImage(provider.image)?.agentPackage;
  const build = agentImagePlan(manifest, provider);
  const slug = `${manifest.agent.name}-${input.id}`;
  const stateDir = join(input.stateRoot, slug);
  const backend = input.backend ?? manifest.bottle.backend;
  const vm = backend === "smolmachines";
  const base: Record<string, string> = {
    [LABELS.schema]: LABEL_SCHEMA_VERSION,
    [LABELS.slug]: slug,
    [LABELS.agent]: manifest.agent.name,
    [LABELS.bottle]: manifest.bottle.name,
    [LABELS.stateDir]: stateDir,
    [LABELS.backend]: backend,
  };
  const labels = (role: Role) => ({ ...base, [LABELS.role]: role });
  const prefix = `bot-bottle-${slug}`;

  const init: InitConfig = {
    slug,
    daemons: [
      {
        name: "egress",
        command: ["node", `${BUNDLE_ROOT}/sidecars/egress/main.js`, "--port", String(EGRESS_PORT)],
        port: EGRESS_PORT,
        reload: true,
      },
      ...(gate ? [GIT_GATE_DAEMON] : []),
      ...(superviseOn
        ? [
            {
              name: "supervise",
              command: ["node", `${BUNDLE_ROOT}/sidecars/supervise/main.js`],
              port: SUPERVISE_PORT,
              reload: false,
              // Of the bundle's daemons, supervise alone has a health endpoint to ask.
              probe: { port: SUPERVISE_PORT, path: SUPERVISE_HEALTH_PATH },
            },
          ]
        : []),
      // A VM's flows may come through smolvm's egress interceptor: it relays them to the proxy.
      ...(vm
        ? [
            {
              name: "intercept",
              command: [
                "node",
                `${BUNDLE_ROOT}/sidecars/intercept/main.js`,
                "--config",
                INTERCEPT_CONFIG_PATH,
              ],
              port: INTERCEPT_PORT,
              reload: false,
            },
          ]
        : []),
    ],
    healthPort: HEALTH_PORT,
    stopGraceMs: 3000,
  };

  if (gate && vm)
    throw new UsageError(
      `bottles.${manifest.bottle.name}.git declares repositories, and the git gate does not serve smolmachines bottles yet`,
      "use the docker backend for this bottle, or remove its git entries",
    );
  const secretEnv = [...routeSecretNames(manifest.bottle), ...gitSecretNames(manifest.bottle)];

  // A VM reaches the proxy on a port published on the host's loopback, which more than the agent
  // can reach: there the agent presents a key made at every start.
  const egress = {
    ...egressConfigFor(manifest.bottle, slug, 1),
    ...(vm ? { agentKeyEnv: AGENT_KEY_ENV } : {}),
    ...(session.forwardedLogin && provider.hostLogin?.jwtEnv
      ? { jwtEnv: [...provider.hostLogin.jwtEnv] }
      : {}),
  };
  // The agent writes its workspace as the folder's owner — never as root: a root-owned folder
  // keeps the image's uid and gets an ACL for it, unless everyone may write it already.
  const owner = input.workspaceOwner;
  const ids =
    owner.uid === 0 ? { uid: AGENT_UID, gid: AGENT_UID } : { uid: owner.uid, gid: owner.gid };
  const grant = owner.uid === 0 && (owner.mode & 0o002) === 0 ? { uid: AGENT_UID } : undefined;
  // A user plugin's files are the operator's too (its plugin.json, Dockerfile, files).
  const trusted = [...trustedFiles(manifest), ...(provider.trusted ?? [])];
  const readOnlyFiles = shieldedFiles(trusted, input.workspace).map((host) => ({
    host,
    container: `${WORKSPACE}/${basename(host)}`,
  }));
  if (vm && readOnlyFiles.length > 0)
    throw new UsageError(
      `${readOnlyFiles.map((f) => f.host).join(", ")} lies in the workspace, and a smolmachines bottle shares only whole folders with its VM, so it cannot keep that file out of the agent's reach`,
      "move the manifest and the files it names out of the workspace (-f PATH), or use the docker backend",
    );
  const agentEnv: Record<string, string> = {
    ...provider.env(session),
    HOME: AGENT_HOME,
    USER: AGENT_USER,
    BOT_BOTTLE_SLUG: slug,
    // A VM reaches the bundle at an address only launch knows (backends/plan.ts bundleAddress).
    ...(vm
      ? agentEgressEnv(`http://${bundleAddress(EGRESS_PORT)}`, ["localhost", "127.0.0.1"])
      : agentEgressEnv(`http://egress:${EGRESS_PORT}`, [
          ...BUNDLE_ALIASES,
          "localhost",
          "127.0.0.1",
        ])),
  };

  return {
    slug,
    backend,
    agent: {
      name: manifest.agent.name,
      template: manifest.agent.template,
      templateHosts: templated.templateHosts,
      ...(cli ? { cli: `${cli.name}@${cli.version}` } : {}),
    },
    bottle: { name: manifest.bottle.name },
    manifest: { file: manifest.file, sha256: manifest.sha256 },
    stateDir,
    workspace: { host: input.workspace, container: WORKSPACE, ...(grant ? { grant } : {}) },
    networks: {
      pool: input.addressPool ?? addressPoolOf({}),
      ...(vm
        ? {}
        : {
            internal: {
              name: `${prefix}-internal`,
              bridge: `bb${input.id}i`,
              internal: true,
              labels: labels("internal-network"),
            },
          }),
      egress: {
        name: `${prefix}-egress`,
        bridge: `bb${input.id}e`,
        internal: false,
        labels: labels("egress-network"),
      },
    },
    bundle: {
      name: `${prefix}-bundle`,
      image: input.images.bundle,
      labels: {
        ...labels("bundle"),
        [LABELS.ports]: Object.entries(ports)
          .map(([d, p]) => `${d}=${p}`)
          .join(","),
      },
      env: { BOT_BOTTLE_SLUG: slug, BOT_BOTTLE_INIT_CONFIG: INIT_CONFIG_PATH },
      aliases: vm ? [] : BUNDLE_ALIASES,
      ports,
      secretEnv: [...new Set(secretEnv)],
      // Files whose contents the bundle gets as variables: the CA key, each git key (0600 on the
      // bundle's tmpfs, never in the agent).
      fileSecretEnv: { [CA_KEY_ENV]: "ca/ca.key", ...gitKeyFiles(manifest.bottle) },
      healthPort: init.healthPort,
      configDir: "bundle",
      auditDir: "audit",
      auditMount: AUDIT_DIR,
      ...(gateReady ? { mirrorDir: "git", mirrorMount: GIT_GATE_ROOT } : {}),
      uid: BUNDLE_UID,
      extraNetworks: manifest.bottle.egress.network ? [manifest.bottle.egress.network] : [],
      ...(vm ? { interceptor: { port: INTERCEPT_PORT, tokenEnv: INTERCEPT_TOKEN_ENV } } : {}),
      limits: { memory: "256m", pids: 256, cpus: 1 },
    },
    agentContainer: {
      // smolvm refuses "--" in a machine name; slugs are unique with or without it.
      name: vm ? `${prefix}-agent`.replace(/-{2,}/g, "-") : `${prefix}-agent`,
      build,
      ...(ids.uid === AGENT_UID && ids.gid === AGENT_UID
        ? { image: build.ref }
        : { image: userImageRef(build.ref, ids), baseImage: build.ref }),
      labels: { ...labels("agent"), [LABELS.workdir]: WORKSPACE },
      env: agentEnv,
      user: AGENT_USER,
      ...ids,
      home: AGENT_HOME,
      workdir: WORKSPACE,
      limits: { memory: "4g", pids: 1024 },
      command: ["sleep", "infinity"],
      attach: provider.interactive(session),
      headless: provider.headless(session),
      provision: {
        files: provider.files(session),
        skills: (manifest.agent.skills ?? []).map((host) => ({
          host,
          container: posix.join(AGENT_HOME, provider.skillsDir, basename(host)),
        })),
        ...(manifest.bottle.git_user ? { gitUser: manifest.bottle.git_user } : {}),
        ...(gate ? { gitUrls: gitUrlRewrites(manifest.bottle) } : {}),
      },
      placeholderEnv: placeholderEnv(manifest, provider),
      ...(manifest.agent.forward_host_credentials && provider.hostLogin
        ? { login: { what: provider.hostLogin.what, secretEnv: [...provider.hostLogin.secretEnv] } }
        : {}),
      readOnlyFiles,
    },
    egress,
    deployKeys: giteaKeysOf(manifest.bottle, slug),
    ...(superviseOn && manifest.bottle.supervise !== false
      ? { supervise: manifest.bottle.supervise }
      : {}),
    trusted,
    files: {
      "bundle/init.json": JSON.stringify(init, null, 2) + "\n",
      "bundle/egress.json": JSON.stringify(egress, null, 2) + "\n",
      ...(superviseOn
        ? {
            "bundle/supervise.json":
              JSON.stringify(superviseConfigFor(manifest.bottle, slug, egress), null, 2) + "\n",
          }
        : {}),
      ...(gateReady
        ? {
            "bundle/git-gate.json":
              JSON.stringify(
                gitGateConfigFor(manifest.bottle, slug, [
                  ...secretEnv,
                  CA_KEY_ENV,
                  ...(egress.agentKeyEnv ? [egress.agentKeyEnv] : []),
                ]),
                null,
                2,
              ) + "\n",
          }
        : {}),
      ...(vm
        ? {
            "bundle/intercept.json":
              JSON.stringify(
                {
                  slug,
                  tokenEnv: INTERCEPT_TOKEN_ENV,
                  port: INTERCEPT_PORT,
                  flows: Object.values(ports).map((port) => ({
                    address: BUNDLE_VM_ADDRESS,
                    port,
                    to: port,
                  })),
                } satisfies InterceptConfig,
                null,
                2,
              ) + "\n",
          }
        : {}),
      [TRUSTED_FILE]: JSON.stringify(trusted, null, 2) + "\n",
    },
    copies: {
      "bundle/ca.crt": "ca/ca.crt",
      ...(manifest.bottle.egress.trust_ca
        ? { "bundle/trust-ca.pem": manifest.bottle.egress.trust_ca }
        : {}),
    },
  };
}

/** Finding what bot-bottle created on the Docker engine, by its labels. */
import { LABELS, type Role } from "../../shared/labels.js";
import type { BackendName, Resource } from "../backend.js";
import type { DockerCli } from "./cli.js";
import { engineGet, filtersQuery, socketOf } from "./engine-api.js";
import { healthOfStatus } from "./health.js";

const FIELDS = ["slug", "role", "stateDir", "agent", "bottle", "backend", "ports"] as const;
const labelColumns = FIELDS.map((f) => `{{.Label "${LABELS[f]}"}}`).join("\t");

/** One container or network as either source lists it. */
interface Listed {
  name: string;
  state: string;
  /** `docker ps`'s Status column ("Up 2 minutes (healthy)"); "-" for a network. */
  status: string;
  created: string;
  labels: Readonly<Record<string, string>>;
}

function toResource(kind: "container" | "network", listed: Listed): Resource {
  const label = (f: (typeof FIELDS)[number]) => listed.labels[LABELS[f]] ?? "";
  const health = healthOfStatus(listed.status);
  const ports = label("ports");
  return {
    kind,
    name: listed.name,
    state: listed.state,
    created: listed.created,
    slug: label("slug"),
    role: label("role") as Role,
    stateDir: label("stateDir"),
    agent: label("agent"),
    bottle: label("bottle"),
    backend: (label("backend") || "docker") as BackendName,
    ...(ports ? { ports: parsePorts(ports) } : {}),
    ...(health ? { health } : {}),
  };
}

/** The CLI's lines: the fixed columns, then one per label of FIELDS, tab-separated. */
function fromCli(out: string): Listed[] {
  return out
    .split("\n")
    .filter((l) => l.trim())
    .map((line) => {
      const [name = "", state = "", status = "", created = "", ...values] = line.split("\t");
      const labels: Record<string, string> = {};
      FIELDS.forEach((f, i) => (labels[LABELS[f]] = values[i] ?? ""));
      return { name, state, status, created, labels };
    });
}

/** "egress=9099,git=9418" -> { egress: 9099, git: 9418 } */
export function parsePorts(label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of label.split(",")) {
    const [name = "", port = ""] = part.split("=");
    if (name && /^\d+$/.test(port)) out[name] = Number(port);
  }
  return out;
}

/** Listings under way, per engine client and filter: backends asking at once share one. */
const pending = new WeakMap<DockerCli, Map<string, Promise<Resource[]>>>();

/**
 * Every container and network carrying bot-bottle's labels, optionally of one bottle. Both
 * backends keep their bundles on the engine: when they ask at the same moment (`ls`, the trust
 * checks of `start`), the engine is asked once.
 */
export function dockerResources(docker: DockerCli, slug?: string): Promise<Resource[]> {
  let byFilter = pending.get(docker);
  if (!byFilter) pending.set(docker, (byFilter = new Map<string, Promise<Resource[]>>()));
  const key = slug ?? "";
  const running = byFilter.get(key);
  if (running) return running;
  const listing = listResources(docker, slug).finally(() => byFilter.delete(key));
  byFilter.set(key, listing);
  return listing;
}

async function listResources(docker: DockerCli, slug?: string): Promise<Resource[]> {
  const label = slug ? `${LABELS.slug}=${slug}` : LABELS.slug;
  const socket = socketOf(docker.env);
  // The API when the CLI would talk to the same socket; the CLI when not, or when it fails.
  const fromEngine = socket ? await fromApi(socket, label).catch(() => undefined) : undefined;
  const listed = fromEngine ?? (await fromCliCalls(docker, label));
  return [
    ...listed.containers.map((c) => toResource("container", c)),
    ...listed.networks.map((n) => toResource("network", n)),
  ];
}

type Listing = { containers: Listed[]; networks: Listed[] };

/** Both lists from the engine's API: two requests on its socket. */
async function fromApi(socket: string, label: string): Promise<Listing> {
  const query = filtersQuery({ label: [label] });
  const [containers, networks] = (await Promise.all([
    engineGet(socket, `/containers/json?all=1&${query}`),
    engineGet(socket, `/networks?${query}`),
  ])) as [ApiContainer[], ApiNetwork[]];
  return {
    containers: containers.map((c) => ({
      name: (c.Names?.[0] ?? c.Id ?? "").replace(/^\//, ""),
      state: c.State ?? "",
      status: c.Status ?? "",
      created: c.Created !== undefined ? new Date(c.Created * 1000).toISOString() : "",
      labels: c.Labels ?? {},
    })),
    networks: networks.map((n) => ({
      name: n.Name ?? "",
      state: "-",
      status: "-",
      created: n.Created ?? "",
      labels: n.Labels ?? {},
    })),
  };
}

interface ApiContainer {
  Id?: string;
  Names?: string[];
  State?: string;
  Status?: string;
  Created?: number;
  Labels?: Record<string, string> | null;
}

interface ApiNetwork {
  Name?: string;
  Created?: string;
  Labels?: Record<string, string> | null;
}

/** Both lists from the `docker` CLI: two processes. */
async function fromCliCalls(docker: DockerCli, label: string): Promise<Listing> {
  const filter = ["--filter", `label=${label}`];
  const [containers, networks] = await Promise.all([
    docker.run([
      "ps",
      "-a",
      ...filter,
      "--format",
      `{{.Names}}\t{{.State}}\t{{.Status}}\t{{.CreatedAt}}\t${labelColumns}`,
    ]),
    docker.run([
      "network",
      "ls",
      ...filter,
      "--format",
      `{{.Name}}\t-\t-\t{{.CreatedAt}}\t${labelColumns}`,
    ]),
  ]);
  return { containers: fromCli(containers.stdout), networks: fromCli(networks.stdout) };
}

/** The one container of a role among a bottle's resources. */
export function containerOf(resources: readonly Resource[], role: Role): Resource | undefined {
  return resources.find((r) => r.kind === "container" && r.role === role);
}

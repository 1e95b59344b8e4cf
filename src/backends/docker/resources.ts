/** Finding what bot-bottle created on the Docker engine, by its labels. */
import { LABELS, type Role } from "../../shared/labels.js";
import type { BackendName, Resource } from "../backend.js";
import type { DockerCli } from "./cli.js";
import { healthOfStatus } from "./health.js";

const FIELDS = ["slug", "role", "stateDir", "agent", "bottle", "backend", "ports"] as const;
const labelColumns = FIELDS.map((f) => `{{.Label "${LABELS[f]}"}}`).join("\t");

function parse(kind: "container" | "network", out: string): Resource[] {
  return out
    .split("\n")
    .filter((l) => l.trim())
    .map((line) => {
      const [
        name = "",
        state = "",
        status = "",
        created = "",
        slug = "",
        role = "",
        stateDir = "",
        agent = "",
        bottle = "",
        backend = "",
        ports = "",
      ] = line.split("\t");
      const health = healthOfStatus(status);
      return {
        kind,
        name,
        state,
        created,
        slug,
        role: role as Role,
        stateDir,
        agent,
        bottle,
        backend: (backend || "docker") as BackendName,
        ...(ports ? { ports: parsePorts(ports) } : {}),
        ...(health ? { health } : {}),
      };
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
  const filter = ["--filter", slug ? `label=${LABELS.slug}=${slug}` : `label=${LABELS.slug}`];
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
  return [...parse("container", containers.stdout), ...parse("network", networks.stdout)];
}

/** The one container of a role among a bottle's resources. */
export function containerOf(resources: readonly Resource[], role: Role): Resource | undefined {
  return resources.find((r) => r.kind === "container" && r.role === role);
}

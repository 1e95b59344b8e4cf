/**
 * Building the images under images/ with `docker build`. BASE_IMAGE is, for an image built `from`
 * another of the catalog (the agent templates on shell), that image, built first when needed;
 * otherwise the offline base when it exists on this engine (so nothing is pulled), else the
 * Dockerfile's public default. A recipe label (a hash of the build context, the build args and the
 * base image's id) lets an unchanged image be reused; checking costs one `docker image inspect`.
 * An image that installs an agent CLI with npm gets the host's CAs and npm registry
 * (npm-host.ts): both count in its recipe.
 */
import { createHash } from "node:crypto";
import { access, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Progress } from "../../shared/progress.js";
import { PrerequisiteError, UsageError } from "../../errors.js";
import { PACKAGE_ROOT } from "../../package-root.js";
import type { DockerCli } from "./cli.js";
import { LABEL_PREFIX, LABEL_SCHEMA_VERSION } from "../../shared/labels.js";
import {
  addFolder,
  assembleContext,
  hashContext,
  type BuildContext,
  type WalkFilter,
} from "./context.js";
import { dockerBuild, ImageBuildError } from "./docker-build.js";
import {
  agentPackageSpec,
  baseImageRef,
  DEFAULT_SUITE,
  imageCatalog,
  type AgentPackage,
  type ImageEntry,
} from "./images.js";
import { imageFor, inspectImages, type InspectedImage } from "./inspect.js";
import { BUILD_CA_FILE, npmBuildInputs, type NpmBuildInputs } from "./npm-host.js";

export const RECIPE_LABEL = `${LABEL_PREFIX}.recipe`;

export interface BuildOptions {
  docker: DockerCli;
  progress: Progress;
  /** BASE_IMAGE of images built from no other; default: the offline base when present, else the
   * Dockerfile's. */
  baseImage?: string;
  force: boolean;
}

export interface BuildResult {
  name: string;
  ref: string;
  /** The image's id after this call. */
  id: string;
  baseImage: string;
  reused: boolean;
  seconds: number;
  /** Bytes on disk. */
  size: number;
  /** The agent CLI it holds (`name@version`), for a template that installs one. */
  agentPackage?: string;
}

type Buildable = ImageEntry & { dockerfileDir: string };

export function buildableImage(name: string): Buildable {
  const entry = imageCatalog().find((i) => i.name === name);
  if (!entry?.dockerfileDir) {
    const names = imageCatalog()
      .filter((i) => i.dockerfileDir)
      .map((i) => i.name);
    throw new UsageError(`there is no buildable image "${name}"`, `images: ${names.join(", ")}`);
  }
  return entry as Buildable;
}

/**
 * The images to ensure for `names`, each after the image it is built from, each once: asking for
 * claude gives shell, claude.
 */
export function buildOrder(names: readonly string[]): Buildable[] {
  const order: Buildable[] = [];
  const visit = (name: string, chain: string[]): void => {
    if (order.some((e) => e.name === name)) return;
    if (chain.includes(name))
      throw new Error(`images: ${[...chain, name].join(" -> ")} is a cycle of "from"`);
    const entry = buildableImage(name);
    if (entry.from) visit(entry.from, [...chain, name]);
    order.push(entry);
  };
  for (const name of names) visit(name, []);
  return order;
}

/** The build args an image gets besides BASE_IMAGE (they count in its recipe). */
export function buildArgs(
  agentPackage: AgentPackage | undefined,
  npm: NpmBuildInputs | undefined,
): Record<string, string> {
  return {
    ...(agentPackage
      ? { AGENT_PACKAGE: agentPackageSpec(agentPackage), AGENT_COMMAND: agentPackage.command }
      : {}),
    ...(npm?.registry ? { NPM_REGISTRY: npm.registry } : {}),
  };
}

/** The recipe label's value: the context's digest, the base image's id, the build args. */
export function recipeOf(contextDigest: string, baseId: string, args: Record<string, string>) {
  return createHash("sha256")
    .update(contextDigest)
    .update("\0")
    .update(baseId)
    .update("\0")
    .update(JSON.stringify(Object.entries(args).sort(([a], [b]) => (a < b ? -1 : 1))))
    .digest("hex")
    .slice(0, 16);
}

/**
 * The packages the bundle's code imports at run time: zod (shared/'s schemas) and the MCP SDK
 * (supervise's server), each with its `dependencies` and `peerDependencies`, walked from
 * node_modules. The SDK's own list is replaced by the few its server side imports at run time
 * (server/index.js and server/streamableHttp.js, and what they import): the rest of its
 * dependencies (express, cors, jose, eventsource, cross-spawn, pkce-challenge, … — its client,
 * OAuth and Express helpers; 83 of the 94 packages) never load in the bundle. Should an SDK
 * update import one more, the supervise daemon fails at start (refusing everything), and
 * running it in the built image shows it.
 */
const BUNDLE_PACKAGES = ["zod", "@modelcontextprotocol/sdk"];
const RUNTIME_DEPENDENCIES: Readonly<Record<string, readonly string[]>> = {
  "@modelcontextprotocol/sdk": [
    "@hono/node-server", // StreamableHTTPServerTransport on node:http (with its peer, hono)
    "hono",
    "ajv", // the Server class checks JSON Schemas with it
    "ajv-formats",
    "content-type",
    "zod-to-json-schema",
    "zod",
  ],
};

interface BundlePackage {
  name: string;
  dir: string;
  /** `"type": "module"`: its .js files are ES modules, its .cjs files the CommonJS twins. */
  esm: boolean;
}

interface PackageJson {
  type?: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** Where Node would find `name` from `from`: the nearest node_modules/<name> up the tree. */
async function packageDir(name: string, from: string): Promise<string | undefined> {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (
      await access(join(candidate, "package.json")).then(
        () => true,
        () => false,
      )
    )
      return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * The packages of BUNDLE_PACKAGES and their runtime closure, one copy of each (the bundle's
 * node_modules is flat: two versions of one package are an error, not a guess).
 */
async function bundlePackages(): Promise<BundlePackage[]> {
  const found = new Map<string, BundlePackage>();
  const visit = async (name: string, from: string, by: string): Promise<void> => {
    const dir = await packageDir(name, from);
    if (dir === undefined)
      throw new Error(
        `the bundle image needs ${name} (${by}), which is not installed: run \`npm install\``,
      );
    const seen = found.get(name);
    if (seen) {
      if (seen.dir !== dir)
        throw new Error(
          `the bundle image would need two copies of ${name}: ${seen.dir} and ${dir}`,
        );
      return;
    }
    const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as PackageJson;
    found.set(name, { name, dir, esm: manifest.type === "module" });
    const peers = Object.keys(manifest.peerDependencies ?? {}).filter(
      (p) => manifest.peerDependenciesMeta?.[p]?.optional !== true,
    );
    const deps = RUNTIME_DEPENDENCIES[name] ?? [
      ...Object.keys(manifest.dependencies ?? {}),
      ...peers,
    ];
    for (const dep of deps) await visit(dep, dir, `needed by ${name}`);
  };
  for (const name of BUNDLE_PACKAGES) await visit(name, PACKAGE_ROOT, "imported by the sidecars");
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * A package's files that run: JavaScript, JSON and the licence. Not sources, types or maps, and
 * not the CommonJS twin builds the bundle never loads (it imports): "cjs" folders, and .cjs files
 * beside the .js ES modules of a `"type": "module"` package. Nested node_modules are never taken.
 */
function runtimeFiles(esm: boolean): WalkFilter {
  return {
    dir: (name) => name !== "cjs" && name !== "node_modules",
    file: (name) =>
      /\.(js|mjs|json)$/.test(name) ||
      (!esm && name.endsWith(".cjs")) ||
      /^(LICEN[CS]E|COPYING)/i.test(name),
  };
}

/** The files of an image's build context (a template that runs npm gets the host's CAs in it). */
export async function imageContext(
  entry: Buildable,
  npm: NpmBuildInputs | undefined,
): Promise<BuildContext> {
  const context: BuildContext = new Map();
  await addFolder(context, join(PACKAGE_ROOT, "images", entry.dockerfileDir), "");
  if (entry.agentPackage) context.set(BUILD_CA_FILE, { content: npm?.caBundle ?? "" });
  if (entry.withSidecars) {
    const noMaps = { file: (name: string) => !name.endsWith(".map") };
    // The compiled sidecar code, and the shared types it imports; nothing else of the CLI.
    for (const part of ["sidecars", "shared"])
      await addFolder(context, join(PACKAGE_ROOT, "dist", part), `app/${part}`, noMaps);
    // The bundle has no node_modules of its own: the packages its code imports go beside it.
    for (const pkg of await bundlePackages())
      await addFolder(context, pkg.dir, `app/node_modules/${pkg.name}`, runtimeFiles(pkg.esm));
    context.set("app/package.json", { content: '{ "type": "module" }\n' });
  }
  return context;
}

/** Builds each named image (and those it is built from) unless an image from the same recipe
 * exists (or `force`, which rebuilds the named ones only). */
export async function ensureImages(
  names: readonly string[],
  options: BuildOptions,
): Promise<BuildResult[]> {
  const { docker, progress } = options;
  const entries = buildOrder(names);
  const npm = entries.some((e) => e.agentPackage) ? await npmBuildInputs(docker.env) : undefined;
  const offlineBase = baseImageRef(DEFAULT_SUITE);
  const [inspected, ...contexts] = await Promise.all([
    inspectImages(docker, [options.baseImage ?? offlineBase, ...entries.map((e) => e.ref)]),
    ...entries.map((e) => imageContext(e, npm)),
  ]);
  const rootBase =
    options.baseImage ?? (imageFor(inspected, offlineBase) ? offlineBase : undefined);

  const results: BuildResult[] = [];
  for (const [i, entry] of entries.entries()) {
    const context = contexts[i] as BuildContext;
    const parent = entry.from ? results.find((r) => r.name === entry.from) : undefined;
    const base = parent ? parent.ref : rootBase;
    const baseId = parent
      ? parent.id
      : base
        ? (imageFor(inspected, base)?.id ?? base)
        : "dockerfile-default";
    const baseName = base ?? "the Dockerfile's default (pulled from its registry)";
    const args = buildArgs(entry.agentPackage, entry.agentPackage ? npm : undefined);
    const recipe = recipeOf(await hashContext(context), baseId, args);
    const existing = imageFor(inspected, entry.ref);
    const result = (image: InspectedImage, reused: boolean, seconds: number): BuildResult => ({
      name: entry.name,
      ref: entry.ref,
      id: image.id,
      baseImage: baseName,
      reused,
      seconds,
      size: image.size,
      ...(entry.agentPackage ? { agentPackage: agentPackageSpec(entry.agentPackage) } : {}),
    });
    const forced = options.force && names.includes(entry.name);
    if (existing && !forced && existing.labels[RECIPE_LABEL] === recipe) {
      results.push(result(existing, true, 0));
      continue;
    }
    const started = Date.now();
    progress.step(`docker build ${entry.ref} from ${baseName}`);
    const dir = await assembleContext(context);
    try {
      await dockerBuild(
        docker,
        [
          // Forced: every step runs again (fresh packages), not only the recipe label changes.
          ...(forced ? ["--no-cache"] : []),
          ...(base ? ["--build-arg", `BASE_IMAGE=${base}`] : []),
          ...Object.entries(args).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
          "--label",
          `${LABEL_PREFIX}.schema=${LABEL_SCHEMA_VERSION}`,
          "--label",
          `${LABEL_PREFIX}.kind=${entry.name}`,
          "--label",
          `${RECIPE_LABEL}=${recipe}`,
          "--tag",
          entry.ref,
          dir,
        ],
        {
          progress,
          onFailure: (lastLines, err) => {
            // No offline base and no registry: say how to get a base instead of docker's pull error.
            if (!base && /pull|manifest|registry|resolve|dial tcp/i.test(err.stderr))
              return new PrerequisiteError(
                `building ${entry.ref} needs its base image, which could not be pulled: ${err.stderr.trim().split("\n").pop() ?? ""}`,
                "run `sudo bot-bottle images base` to build the base from Debian's packages, then start again",
                err,
              );
            return new ImageBuildError(entry.ref, lastLines, buildHint(entry, lastLines, npm), err);
          },
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const built = imageFor(await inspectImages(docker, [entry.ref]), entry.ref);
    if (!built) throw new Error(`docker build reported success but ${entry.ref} is not there`);
    const seconds = (Date.now() - started) / 1000;
    progress.done(`built ${entry.ref} in ${seconds.toFixed(1)} s`);
    results.push(result(built, false, seconds));
  }
  if (results.every((r) => r.reused))
    progress.done(`images up to date: ${results.map((r) => r.ref).join(", ")}`);
  return results;
}

/** What to do about a failed build of one of bot-bottle's own images. */
function buildHint(entry: Buildable, lastLines: string[], npm: NpmBuildInputs | undefined): string {
  const output = lastLines.join("\n");
  if (
    entry.agentPackage &&
    /self[- ]signed certificate|unable to get local issuer|UNABLE_TO_VERIFY/i.test(output)
  )
    return (
      `npm could not verify the registry's certificate with the CAs taken from ${npm?.caSources.join(" and ") || "nowhere (none found)"}: ` +
      "set NODE_EXTRA_CA_CERTS to a file holding the CA your network's TLS inspection uses, then build again"
    );
  if (entry.agentPackage && /E404|ETARGET|ENOTFOUND|EAI_AGAIN|ECONNREFUSED/.test(output))
    return `npm could not fetch ${agentPackageSpec(entry.agentPackage)} from ${npm?.registry ?? "the npm registry"}: check the host's npm registry setting and network`;
  return `the whole output: \`bot-bottle images build ${entry.name}\` shows each step`;
}

/**
 * What an image build that runs npm takes from the host: the CAs the host trusts beyond a
 * container's (a registry reached through TLS inspection is trusted only with the inspecting CA,
 * which sits in the host's store) and the npm registry the host uses. The CAs reach the build as
 * `build-ca.pem` in the context, trusted by the npm step alone and removed in it; the registry as
 * the build arg NPM_REGISTRY, passed only when it is not npm's default.
 */
import { readFile as fsReadFile } from "node:fs/promises";
import { PrerequisiteError } from "../../errors.js";
import { run } from "../../exec/run.js";

export const DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/";
/** Debian's and Ubuntu's bundle of the system's trusted CAs (others' extra CAs are added to it). */
export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
/** The context file holding the CAs; the templates' Dockerfiles COPY it. */
export const BUILD_CA_FILE = "build-ca.pem";

export interface NpmBuildInputs {
  /** PEM text of the host's CAs (empty when the host has none to offer). */
  caBundle: string;
  /** The files it was made of, for messages. */
  caSources: string[];
  /** The host's npm registry, when it is not npm's default. */
  registry?: string;
}

type ReadText = (path: string) => Promise<string>;
const readText: ReadText = (path) => fsReadFile(path, "utf8");

/**
 * The host's CAs as one PEM: the file NODE_EXTRA_CA_CERTS names (when set and readable), then the
 * system bundle (when present); a file read twice (same path or same bytes) counts once.
 */
export async function hostCaBundle(
  env: NodeJS.ProcessEnv,
  options: { systemBundle?: string; read?: ReadText } = {},
): Promise<{ pem: string; sources: string[] }> {
  const read = options.read ?? readText;
  const paths = [env["NODE_EXTRA_CA_CERTS"], options.systemBundle ?? SYSTEM_CA_BUNDLE].filter(
    (p): p is string => !!p,
  );
  const parts: string[] = [];
  const sources: string[] = [];
  for (const path of [...new Set(paths)]) {
    const text = await read(path).catch(() => undefined);
    if (!text?.includes("-----BEGIN CERTIFICATE-----") || parts.includes(text)) continue;
    parts.push(text);
    sources.push(path);
  }
  return { pem: parts.map((p) => (p.endsWith("\n") ? p : p + "\n")).join(""), sources };
}

/** A registry URL as npm compares it: with a trailing slash. */
function normalizeRegistry(url: string): string {
  return url.endsWith("/") ? url : url + "/";
}

/**
 * The registry the host's npm uses: npm_config_registry (any case) from the environment, else
 * `npm config get registry` (the host's .npmrc files), else npm's default. Undefined when it is
 * the default. A URL carrying a user or password is refused: build args show in the image's
 * history.
 */
export async function hostNpmRegistry(
  env: NodeJS.ProcessEnv,
  configGet: () => Promise<string | undefined> = () => npmConfigGet(env),
): Promise<string | undefined> {
  const fromEnv = Object.entries(env).find(
    ([k, v]) => k.toLowerCase() === "npm_config_registry" && v,
  )?.[1];
  const raw = (fromEnv ?? (await configGet()) ?? "").trim();
  if (!raw || raw === "undefined" || raw === "null") return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PrerequisiteError(
      "the host's npm registry setting is not a URL",
      "fix `registry` in your .npmrc (or npm_config_registry), e.g. https://registry.npmjs.org/",
    );
  }
  if (url.username || url.password)
    throw new PrerequisiteError(
      "the host's npm registry URL carries a user or password, which an image build would record in the image's history",
      "give the registry without credentials (an internal mirror that needs none), or unset npm_config_registry for image builds",
    );
  const registry = normalizeRegistry(url.href);
  return registry === DEFAULT_NPM_REGISTRY ? undefined : registry;
}

async function npmConfigGet(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    const { stdout } = await run("npm", ["config", "get", "registry"], { env, timeoutMs: 15_000 });
    return stdout.trim() || undefined;
  } catch {
    // No npm on the host, or it failed: npm's default, as a fresh install would use.
    return undefined;
  }
}

export async function npmBuildInputs(env: NodeJS.ProcessEnv): Promise<NpmBuildInputs> {
  const [ca, registry] = await Promise.all([hostCaBundle(env), hostNpmRegistry(env)]);
  return { caBundle: ca.pem, caSources: ca.sources, ...(registry ? { registry } : {}) };
}

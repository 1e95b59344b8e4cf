/**
 * The backends, by name: the one place cli/ and lifecycle/ get a Backend from. Everything else
 * they need of a backend is on the Backend and Bottle interfaces (backend.ts).
 */
import { BACKEND_NAMES } from "../manifest/schema.js";
import type { Check } from "../shared/checks.js";
import type { Backend, BackendName } from "./backend.js";
import { DockerCli } from "./docker/cli.js";
import { DockerBackend } from "./docker/backend.js";
import { SmolBackend } from "./smolmachines/backend.js";
import { SmolvmCli } from "./smolmachines/smolvm.js";

export type { Backend, BackendName };

/** The local Docker engine as a thing to install and start, for `bot-bottle setup`. */
export * as dockerEngine from "./docker/engine.js";

/** The backend of that name, driving its tools with this environment. */
export function openBackend(name: BackendName, env: NodeJS.ProcessEnv): Backend {
  switch (name) {
    case "docker":
      return new DockerBackend(new DockerCli(env));
    case "smolmachines":
      return new SmolBackend(new SmolvmCli(env), new DockerCli(env), env);
  }
}

/** Every backend this machine may hold bottles of (listing, cleanup and trust look at all). */
export function allBackends(env: NodeJS.ProcessEnv): Backend[] {
  return BACKEND_NAMES.map((name) => openBackend(name, env));
}

/** What `doctor` reports about the backends: Docker's checks, then smolvm's. */
export async function backendChecks(env: NodeJS.ProcessEnv): Promise<Check[]> {
  const each = await Promise.all(allBackends(env).map((b) => b.checks()));
  return each.flat();
}

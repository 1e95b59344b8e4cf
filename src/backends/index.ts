/**
 * The backends, by name: the one place cli/ and lifecycle/ get a Backend from. Everything else
 * they need of a backend is on the Backend and Bottle interfaces (backend.ts).
 */
import type { Check } from "../shared/checks.js";
import type { Backend, BackendName } from "./backend.js";
import { DockerCli } from "./docker/cli.js";
import { DockerBackend } from "./docker/backend.js";
import { smolvmChecks } from "./smolmachines/checks.js";

export type { Backend, BackendName };

/** The local Docker engine as a thing to install and start, for `bot-bottle setup`. */
export * as dockerEngine from "./docker/engine.js";

/** The backend of that name, driving its tools with this environment. */
export function openBackend(name: BackendName, env: NodeJS.ProcessEnv): Backend {
  switch (name) {
    case "docker":
      return new DockerBackend(new DockerCli(env));
  }
}

/** Every backend this machine may hold bottles of (listing, cleanup and trust look at all). */
export function allBackends(env: NodeJS.ProcessEnv): Backend[] {
  return [openBackend("docker", env)];
}

/** What `doctor` reports about the backends: Docker's checks, then smolvm's. */
export async function backendChecks(env: NodeJS.ProcessEnv): Promise<Check[]> {
  return [...(await openBackend("docker", env).checks()), ...(await smolvmChecks(env))];
}

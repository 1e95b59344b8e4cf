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
export function openBackend(
  name: BackendName,
  env: NodeJS.ProcessEnv,
  docker = new DockerCli(env),
): Backend {
  switch (name) {
    case "docker":
      return new DockerBackend(docker);
    case "smolmachines":
      return new SmolBackend(new SmolvmCli(env), docker, env);
  }
}

/** Every backend this machine may hold bottles of (listing, cleanup and trust look at all),
 * sharing one engine client. */
export function allBackends(env: NodeJS.ProcessEnv): Backend[] {
  const docker = new DockerCli(env);
  return BACKEND_NAMES.map((name) => openBackend(name, env, docker));
}

/** What `doctor` reports about the backends: Docker's checks, then smolvm's. */
export async function backendChecks(env: NodeJS.ProcessEnv): Promise<Check[]> {
  const each = await Promise.all(allBackends(env).map((b) => b.checks()));
  return each.flat();
}

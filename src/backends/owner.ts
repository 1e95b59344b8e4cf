/**
 * What a Bottle handle asks of the backend that made it: its logs and its stop, both by slug,
 * answered from the backend's own resources. The same for every backend.
 */
import type { LogLine } from "../shared/logs.js";
import type { Backend, LogOptions } from "./backend.js";

export interface BottleOwner {
  logsOf(slug: string, options?: LogOptions): Promise<LogLine[]>;
  stopBottle(slug: string): Promise<void>;
}

export function ownerOf(backend: Backend): BottleOwner {
  return {
    async logsOf(slug, options) {
      return backend.logs(await backend.resources(slug), options);
    },
    async stopBottle(slug) {
      const resources = await backend.resources(slug);
      const stateDir = resources.find((r) => r.stateDir)?.stateDir;
      if (stateDir) await backend.teardown(resources, stateDir);
    },
  };
}

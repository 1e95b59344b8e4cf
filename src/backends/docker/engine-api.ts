/**
 * Reads from the engine's API over its unix socket, for the listings every `ls` makes: one HTTP
 * request each instead of a `docker` process each (a Go program that starts, pings the engine,
 * asks, and formats). Used only where the operator's own `docker` would talk to the same socket
 * (the default one, or DOCKER_HOST=unix://…, with no other context chosen); anywhere else — a
 * context, tcp or ssh, a socket this user may not open — `socketOf` says so or the request
 * fails, and the caller asks the `docker` CLI, which honours all of it and words the errors.
 */
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { homedir } from "node:os";
import { join } from "node:path";

const DEFAULT_SOCKET = "/var/run/docker.sock";
/** An engine that answers slower than this is left to the CLI (and its own timeouts). */
const TIMEOUT_MS = 10_000;

/** The context the CLI's config file selects, when it names one. */
function configuredContext(env: NodeJS.ProcessEnv): string | undefined {
  const dir = env["DOCKER_CONFIG"] || join(env["HOME"] || homedir(), ".docker");
  try {
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as {
      currentContext?: unknown;
    };
    return typeof config.currentContext === "string" ? config.currentContext : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The unix socket `docker` would use with this environment, or undefined when it would use
 * something else (or when it cannot be told without the CLI).
 */
export function socketOf(env: NodeJS.ProcessEnv): string | undefined {
  const host = env["DOCKER_HOST"];
  const context = env["DOCKER_CONTEXT"];
  if (context !== undefined && context !== "" && context !== "default") return undefined;
  if (host !== undefined && host !== "")
    return host.startsWith("unix://") && host.length > "unix://".length
      ? host.slice("unix://".length)
      : undefined;
  const configured = configuredContext(env);
  if (configured !== undefined && configured !== "" && configured !== "default") return undefined;
  return DEFAULT_SOCKET;
}

/** GET `path` from the engine on `socket`; the parsed JSON of a 200, otherwise a rejection. */
export function engineGet(socket: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: socket, path, method: "GET", headers: { host: "docker" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) {
            reject(new Error(`the engine answered ${res.statusCode} to GET ${path}`));
            return;
          }
          try {
            resolve(JSON.parse(body));
          } catch {
            reject(new Error(`the engine's answer to GET ${path} is not JSON`));
          }
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer to GET ${path}`)));
    req.on("error", reject);
    req.end();
  });
}

/** `?filters=` for the engine's list endpoints: each key with its values. */
export function filtersQuery(filters: Record<string, readonly string[]>): string {
  return `filters=${encodeURIComponent(JSON.stringify(filters))}`;
}

/**
 * The Docker engine, driven through the `docker` CLI (argv arrays, via src/exec/run.ts). The
 * client honours DOCKER_HOST and contexts exactly as the operator's own `docker` does.
 */
import {
  CommandFailedError,
  CommandNotFoundError,
  run,
  runAttached,
  type RunOptions,
} from "../../exec/run.js";

export interface EngineVersion {
  client: string;
  server: string;
  apiVersion: string;
  os: string;
  arch: string;
}

export interface EngineInfo {
  rootDir: string;
  name: string;
}

export class DockerCli {
  /** The environment docker runs with (the operator's: DOCKER_HOST, proxies, npm and CA settings). */
  readonly env: NodeJS.ProcessEnv;

  constructor(env: NodeJS.ProcessEnv) {
    this.env = env;
  }

  /** Runs docker; `options.env` adds to (never replaces) the CLI's environment. */
  run(args: readonly string[], options: RunOptions = {}) {
    return run("docker", args, { ...options, env: { ...this.env, ...options.env } });
  }

  /** Runs docker on this terminal; resolves to its exit status. */
  runAttached(args: readonly string[]): Promise<number> {
    return runAttached("docker", args, { env: this.env });
  }

  /** Where the client will look for the engine, for messages. */
  get endpoint(): string {
    return this.env["DOCKER_HOST"] || "unix:///var/run/docker.sock";
  }

  async version(timeoutMs = 10_000): Promise<EngineVersion> {
    const { stdout } = await this.run(["version", "--format", "{{json .}}"], { timeoutMs });
    const v = JSON.parse(stdout) as {
      Client?: { Version?: string };
      Server?: { Version?: string; ApiVersion?: string; Os?: string; Arch?: string };
    };
    return {
      client: v.Client?.Version ?? "unknown",
      server: v.Server?.Version ?? "unknown",
      apiVersion: v.Server?.ApiVersion ?? "unknown",
      os: v.Server?.Os ?? "unknown",
      arch: v.Server?.Arch ?? "unknown",
    };
  }

  async info(timeoutMs = 10_000): Promise<EngineInfo> {
    const { stdout } = await this.run(["info", "--format", "{{json .}}"], { timeoutMs });
    const info = JSON.parse(stdout) as { DockerRootDir?: string; Name?: string };
    return { rootDir: info.DockerRootDir ?? "", name: info.Name ?? "" };
  }

  /** Labels of a local image, or undefined when there is no such image. */
  async imageLabels(ref: string): Promise<Record<string, string> | undefined> {
    try {
      const { stdout } = await this.run([
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        ref,
      ]);
      return (JSON.parse(stdout) as Record<string, string> | null) ?? {};
    } catch (err) {
      if (err instanceof CommandFailedError && /no such image/i.test(err.stderr)) return undefined;
      throw err;
    }
  }
}

/** A one-line reason the engine could not be reached, for people. */
export function engineFailureReason(err: unknown): string {
  if (err instanceof CommandNotFoundError) return "the docker client is not installed";
  if (err instanceof CommandFailedError) {
    const line = err.stderr
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l !== "");
    return line ?? err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

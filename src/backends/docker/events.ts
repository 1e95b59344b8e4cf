/**
 * Being told when bottles change on the engine, instead of asking it again and again: one
 * long-running `docker events`, filtered at the engine to bottles' containers (those with a slug
 * label, as `resources()` lists them) starting, dying, going, or changing health. Exec events are
 * never asked for: every `docker exec` and every health check emits three of them.
 *
 * The engine matches `event=health_status` as a prefix of "health_status: healthy" and the like;
 * once that filter is present it matches every `event=` value as a prefix, so the actions are
 * checked again here, exactly.
 */
import { startStreaming, type StreamingChild } from "../../exec/run.js";
import { LABELS } from "../../shared/labels.js";
import type { BackendName } from "../backend.js";
import type { DockerCli } from "./cli.js";

/** The actions that change what a listing of bottles shows ("die" covers a stop and a kill). */
const ACTIONS = ["start", "die", "destroy"] as const;
const HEALTH_ACTION = "health_status";

/**
 * `docker events`' filters. The slug label, not the schema label: bot-bottle's images carry the
 * schema label, so every container run from one (a build step, a check) would match it.
 */
export function eventsArgs(since: Date): string[] {
  return [
    "events",
    "--since",
    (since.getTime() / 1000).toFixed(3),
    "--filter",
    "type=container",
    "--filter",
    `label=${LABELS.slug}`,
    ...[...ACTIONS, HEALTH_ACTION].flatMap((a) => ["--filter", `event=${a}`]),
    "--format",
    "{{json .}}",
  ];
}

/** One container event, as much of it as a watcher needs. */
export interface ContainerEvent {
  /** "start", "die", "destroy", "health_status: healthy", … */
  action: string;
  name: string;
  slug: string;
  /** The backend that made the container ("docker" when it carries no backend label). */
  backend: string;
}

/** A line of `docker events --format '{{json .}}'`; undefined when it is no bottle's container. */
export function parseEvent(line: string): ContainerEvent | undefined {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof event !== "object" || event === null) return undefined;
  const { Type, Action, Actor } = event as {
    Type?: unknown;
    Action?: unknown;
    Actor?: { Attributes?: Record<string, unknown> | null };
  };
  const attributes = Actor?.Attributes ?? {};
  const text = (key: string) => {
    const value = attributes[key];
    return typeof value === "string" ? value : "";
  };
  const slug = text(LABELS.slug);
  if (Type !== "container" || typeof Action !== "string" || !slug) return undefined;
  return { action: Action, name: text("name"), slug, backend: text(LABELS.backend) || "docker" };
}

/** Whether an event changes what `backend`'s listing shows. */
export function concerns(event: ContainerEvent, backend: BackendName): boolean {
  const watched =
    (ACTIONS as readonly string[]).includes(event.action) ||
    event.action.startsWith(`${HEALTH_ACTION}:`);
  return watched && event.backend === backend;
}

export interface WatchOptions {
  /** Only this backend's bottles (by their backend label). */
  backend: BackendName;
  onChange: () => void;
  /** Events closer together than this give one call. */
  debounceMs?: number;
  /** The first wait before `docker events` runs again after it ended; doubled up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How long `docker events` must run to count as connected (a restarted one then calls). */
  settleMs?: number;
}

/** A watch on the engine's bottles, from `watchContainers`. */
export interface ContainerWatch {
  /** The running `docker events` process; undefined while it waits to run again, and after close. */
  readonly pid: number | undefined;
  /** Ends `docker events`; no call comes after this. */
  close(): void;
}

/**
 * Calls `onChange` (at most once per `debounceMs` burst) when one of the backend's bottle
 * containers starts, dies, is removed, or its health changes, until closed. Nothing after the
 * call is missed: `docker events --since` that moment has the engine replay what came before it
 * subscribed. When it ends while open (the engine went away), it runs again after a backoff
 * (doubling up to `maxBackoffMs`), from the moment it ended, and `onChange` is called once it has
 * run `settleMs`: what the engine did while it was away may have left no event.
 */
export function watchContainers(docker: DockerCli, options: WatchOptions): ContainerWatch {
  const debounceMs = options.debounceMs ?? 100;
  const firstBackoff = options.backoffMs ?? 1000;
  const maxBackoff = options.maxBackoffMs ?? 10_000;
  const settleMs = options.settleMs ?? 1000;
  let closed = false;
  let child: StreamingChild | undefined;
  let backoff = firstBackoff;
  const timers = { debounce: undefined, retry: undefined, settle: undefined } as Record<
    "debounce" | "retry" | "settle",
    NodeJS.Timeout | undefined
  >;
  const later = (which: keyof typeof timers, ms: number, then: () => void) => {
    timers[which] = setTimeout(() => {
      timers[which] = undefined;
      if (!closed) then();
    }, ms);
    // The watch never keeps this process alive by itself.
    timers[which].unref();
  };

  const changed = () => {
    if (!closed && !timers.debounce) later("debounce", debounceMs, options.onChange);
  };

  /** Runs `docker events` from `since`; `restarted`: an earlier one ended while open. */
  const run = (since: Date, restarted: boolean) => {
    const current = startStreaming("docker", eventsArgs(since), {
      env: docker.env,
      onStdoutLine: (line) => {
        const event = parseEvent(line);
        if (event && concerns(event, options.backend)) changed();
      },
    });
    child = current;
    let settled = false;
    later("settle", settleMs, () => {
      settled = true;
      backoff = firstBackoff;
      if (restarted) changed();
    });
    void current.ended.then(() => {
      if (closed || child !== current) return;
      child = undefined;
      clearTimeout(timers.settle);
      timers.settle = undefined;
      // One that never settled (the engine still away) saw nothing: the next starts where it did.
      const from = settled ? new Date() : since;
      later("retry", backoff, () => run(from, true));
      backoff = Math.min(backoff * 2, maxBackoff);
    });
  };

  run(new Date(), false);
  return {
    get pid() {
      return child?.pid;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const timer of Object.values(timers)) clearTimeout(timer);
      child?.stop();
      child = undefined;
    },
  };
}

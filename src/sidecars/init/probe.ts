/**
 * init's probe of a daemon that declares one: an HTTP GET on loopback inside the bundle, which
 * must answer 2xx within a deadline. It tells a daemon that is up but stuck (its event loop
 * blocked, its process stopped) from one that works: such a daemon still holds its port open.
 */
import { request } from "node:http";
import type { Probe } from "../../shared/init-config.js";

/** How often init probes, and how long a probe may wait for its answer. */
export interface ProbeTiming {
  intervalMs: number;
  timeoutMs: number;
}

/**
 * Every 15 s, 2 s to answer. A probe is one loopback GET per probed daemon, a wake-up of init and
 * of the daemon: idle bottles pay for it all day, so it runs no more often than it must to keep
 * init's report fresh for the engine's health check (every 60 s, backends/docker/health.ts).
 * 2 s is far more than a working daemon needs to answer on loopback, and less than the check's
 * own deadline.
 */
export const PROBE_TIMING: ProbeTiming = { intervalMs: 15_000, timeoutMs: 2000 };

/** Undefined when the daemon answered 2xx in time; otherwise why not, in a few words. */
export function probeDaemon(probe: Probe, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port: probe.port, path: probe.path, method: "GET", agent: false },
      (res) => {
        res.resume();
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 300 ? undefined : `it answered ${status}`);
        req.destroy();
      },
    );
    const timer = setTimeout(() => {
      resolve(`no answer within ${timeoutMs} ms`);
      req.destroy();
    }, timeoutMs);
    req.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
    req.end();
  });
}

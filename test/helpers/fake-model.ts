/**
 * The fake model API of end-to-end agent tests (test/fixtures/fake-model.mjs), run in a container
 * of the test's own: certificates for the API hosts it stands in for, a start that waits until it
 * listens, and the requests it logged, read back with `docker logs`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../src/exec/run.js";
import { upstreamCerts } from "./fake-upstream.js";

/** The names the fake answers for: the hosts `claude` and `codex` call by default. */
export const FAKE_MODEL_HOSTS = [
  "api.anthropic.com",
  "api.openai.com",
  // The token endpoints of Claude Code's and Codex's logins.
  "platform.claude.com",
  "auth.openai.com",
  // Codex's ChatGPT backend, which a forwarded ChatGPT login uses.
  "chatgpt.com",
] as const;

/** What a test holds of a running fake: its container (for its log) and address on the network. */
export interface FakeModel {
  container: string;
  ip: string;
}

/** One line of the fake's log. `upgrade` is a refused WebSocket upgrade. */
export interface ModelEvent {
  event: "request" | "upgrade" | "listening" | "issued";
  /** "issued": the refresh token a token endpoint was sent, and the tokens it answered. */
  refreshed?: string;
  access_token?: string;
  id_token?: string;
  refresh_token?: string;
  method?: string;
  url?: string;
  host?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** One request the fake received; `json` is its body parsed, when it was JSON. */
export interface ModelRequest {
  method: string;
  url: string;
  host: string;
  headers: Record<string, string>;
  body: string;
  json: unknown;
}

/**
 * A test CA (`ca/ca.crt`, to give the bottle as trust_ca) and a leaf for FAKE_MODEL_HOSTS (and
 * any `extra` names) in `dir`.
 */
export function fakeModelCerts(dir: string, extra: readonly string[] = []): Promise<void> {
  return upstreamCerts(dir, [...FAKE_MODEL_HOSTS, ...extra]);
}

/** Everything the fake in `container` logged, in order. */
export async function modelLog(container: string): Promise<ModelEvent[]> {
  const { stdout } = await run("docker", ["logs", container]);
  return stdout
    .split("\n")
    .filter((l) => l.startsWith('{"event":'))
    .map((l) => JSON.parse(l) as ModelEvent);
}

/** The requests the fake in `container` received, in order. */
export async function modelRequests(container: string): Promise<ModelRequest[]> {
  return (await modelLog(container))
    .filter((e) => e.event === "request")
    .map((e) => {
      let json: unknown;
      try {
        json = JSON.parse(e.body ?? "");
      } catch {
        json = undefined;
      }
      return {
        method: e.method ?? "",
        url: e.url ?? "",
        host: e.host ?? "",
        headers: e.headers ?? {},
        body: e.body ?? "",
        json,
      };
    });
}

/**
 * The fake, started by `start` (which returns its container's name, e.g. TestBottles.fakeModel
 * running test/fixtures/fake-model.mjs with certificates from fakeModelCerts) on `network`:
 * resolves once it listens on 443 and 80, with its name and address.
 */
export async function startFakeModel(
  start: () => Promise<string>,
  network: string,
  timeoutMs = 20_000,
): Promise<FakeModel> {
  const name = await start();
  await waitListening(name, timeoutMs);
  const { stdout } = await run("docker", [
    "inspect",
    "--format",
    `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`,
    name,
  ]);
  return { container: name, ip: stdout.trim() };
}

async function waitListening(container: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout, stderr } = await run("docker", ["logs", container]);
    if (stdout.split("\n").some((l) => l.startsWith('{"event":"listening"'))) return;
    const { stdout: state } = await run("docker", [
      "inspect",
      "--format",
      "{{.State.Status}}",
      container,
    ]);
    const last = [...stdout.split("\n"), ...stderr.split("\n")].filter((l) => l.trim()).pop();
    if (state.trim() !== "running" || Date.now() > deadline)
      throw new Error(
        `the fake model API in ${container} did not listen within ${timeoutMs / 1000} s ` +
          `(container ${state.trim()}); last log line: ${last ?? "(none)"}`,
      );
    await sleep(100);
  }
}

/**
 * The fake Gitea of the git gate's "gitea" key provider tests (test/fixtures/fake-gitea.mjs): its
 * deploy-key API over plain HTTP on :3000, in a container of the test's own on a test network,
 * writing the keys it holds to `authorized_keys` on a volume that the test's sshd upstream
 * (startGitUpstream({ keysVolume })) reads, so a registered key lets its holder clone and push.
 *
 * The host does not resolve the test network's names, so the helper's own calls (call, keys,
 * failNext) run inside the fake's container with `docker exec` (the fixture's client mode, the
 * request on stdin, the token from the container's own environment: none rides on argv); clients
 * on the network (the gate, a throw-away container) use `url`. The token reaches the container
 * through an env file of mode 0600, removed once the container runs.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../src/exec/run.js";

const FIXTURES = join(import.meta.dirname, "..", "fixtures");
/** Where the fake writes, and the upstream reads, the keys on the shared volume. */
export const KEYS_FILE = "/srv/keys/authorized_keys";

export interface FakeGiteaOptions {
  /** The Docker network it joins. */
  network: string;
  /** The name it answers to on `network`; `url` uses it. Default "gitea". */
  alias?: string;
  /** The one token it takes. */
  token: string;
  /** The repositories that exist, "owner/name". */
  repos: readonly string[];
  /** The volume (from createKeysVolume) it writes authorized_keys to, mounted at /srv/keys. */
  keysVolume: string;
  /** Runs the container from `docker run` arguments and returns its name: `(a) => t.container(a)`. */
  launch: (args: string[]) => Promise<string>;
  timeoutMs?: number;
}

/** One request as the fake logged it. `auth`: no token, the right one, or another. */
export interface GiteaRequest {
  method: string;
  path: string;
  status: number;
  auth: "none" | "valid" | "invalid";
  query?: string;
  /** Answered by failNext's injected failure. */
  injected?: boolean;
}

/** A deploy key as the API shows it. */
export interface GiteaKey {
  id: number;
  key_id: number;
  title: string;
  /** `<type> <base64>`, no comment. */
  key: string;
  fingerprint: string;
  read_only: boolean;
  url: string;
  created_at: string;
}

/** An answer of the fake: status, headers (lower-cased), body text and the body parsed. */
export interface GiteaReply {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: unknown;
}

export interface CallOptions {
  /** "token" (the default): `token <T>`; "bearer": `Bearer <T>`; "none"; or a header of its own. */
  auth?: "token" | "bearer" | "none" | { header: string };
  /** A JSON value (sent as JSON) or a raw string. */
  body?: unknown;
  /** The request's Content-Type when there is a body (default application/json; null: none). */
  contentType?: string | null;
}

/** A Docker volume for the keys, labelled as the test's; remove it with removeKeysVolume. */
export async function createKeysVolume(): Promise<string> {
  const name = `bot-bottle-test-keys-${randomBytes(4).toString("hex")}`;
  await run("docker", ["volume", "create", "--label", "dev.bot-bottle.test=1", name]);
  return name;
}

/** Removes the volume (after the containers using it). */
export async function removeKeysVolume(name: string): Promise<void> {
  await run("docker", ["volume", "rm", "--force", name], { okExitCodes: [0, 1] });
}

/** Starts the fake on `options.network` and resolves once it listens. */
export async function startFakeGitea(options: FakeGiteaOptions): Promise<FakeGitea> {
  const alias = options.alias ?? "gitea";
  const dir = await mkdtemp(join(tmpdir(), "bot-bottle-fake-gitea-"));
  try {
    const envFile = join(dir, "env");
    await writeFile(
      envFile,
      `GITEA_TOKEN=${options.token}\nGITEA_REPOS=${options.repos.join(",")}\n` +
        `KEYS_FILE=${KEYS_FILE}\nGITEA_ROOT_URL=http://${alias}:3000/\n`,
      { mode: 0o600 },
    );
    const container = await options.launch([
      "--network",
      options.network,
      "--network-alias",
      alias,
      "--user",
      "root",
      "--env-file",
      envFile,
      "-v",
      `${options.keysVolume}:/srv/keys`,
      "-v",
      `${FIXTURES}:/fixtures:ro`,
      "bot-bottle/shell:latest",
      "node",
      "/fixtures/fake-gitea.mjs",
    ]);
    await waitListening(container, options.timeoutMs ?? 20_000);
    return new FakeGitea(container, alias);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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
    if (state.trim() !== "running" || Date.now() > deadline) {
      const lines = [...stdout.split("\n"), ...stderr.split("\n")].filter((l) => l.trim());
      // A crash ends with node's version line: the error itself is the line to show.
      const last = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.pop();
      throw new Error(
        `the fake Gitea in ${container} did not listen on :3000 within ${timeoutMs / 1000} s ` +
          `(container ${state.trim()}); last log line: ${last ?? "(none)"}`,
      );
    }
    await sleep(100);
  }
}

export class FakeGitea {
  /** What clients on the network call: `http://<alias>:3000`. */
  readonly url: string;

  constructor(
    /** The container's name (its log: `docker logs`). */
    readonly container: string,
    /** The name it answers to on the network. */
    readonly host: string,
  ) {
    this.url = `http://${host}:3000`;
  }

  /** Sends one request from inside the container to the fake (see CallOptions). */
  async call(method: string, path: string, options: CallOptions = {}): Promise<GiteaReply> {
    const request = JSON.stringify({
      method,
      path,
      auth: options.auth ?? "token",
      ...(options.body !== undefined ? { body: options.body } : {}),
      ...(options.contentType !== undefined ? { contentType: options.contentType } : {}),
    });
    const { stdout } = await run(
      "docker",
      ["exec", "-i", this.container, "node", "/fixtures/fake-gitea.mjs", "client"],
      { input: request, timeoutMs: 30_000 },
    );
    const reply = JSON.parse(stdout) as Omit<GiteaReply, "json">;
    let json: unknown;
    try {
      json = reply.text ? JSON.parse(reply.text) : undefined;
    } catch {
      json = undefined;
    }
    return { ...reply, json };
  }

  /** Every request the fake answered, in order (from `docker logs`). */
  async requests(): Promise<GiteaRequest[]> {
    const { stdout } = await run("docker", ["logs", this.container]);
    return stdout
      .split("\n")
      .filter((l) => l.startsWith('{"event":"request"'))
      .map((l) => {
        const record = JSON.parse(l) as GiteaRequest & { event?: string };
        delete record.event;
        return record;
      });
  }

  /**
   * The deploy keys of `repo` ("owner/name"), through the API (GET …/keys, every page). These
   * calls show in requests() like any other.
   */
  async keys(repo: string): Promise<GiteaKey[]> {
    const out: GiteaKey[] = [];
    for (let page = 1; ; page++) {
      const r = await this.call("GET", `/api/v1/repos/${repo}/keys?page=${page}&limit=50`);
      if (r.status !== 200 || !Array.isArray(r.json))
        throw new Error(
          `listing the keys of ${repo} on the fake Gitea: HTTP ${r.status} ${r.text}`,
        );
      out.push(...(r.json as GiteaKey[]));
      if (r.json.length < 50) return out;
    }
  }

  /** Makes the next `count` API requests fail with `status` (body {"message"}); nothing changes. */
  async failNext(status: number, count = 1, message?: string): Promise<void> {
    const r = await this.call("POST", "/__fail", {
      auth: "none",
      body: { status, count, ...(message !== undefined ? { message } : {}) },
    });
    if (r.status !== 200) throw new Error(`the fake Gitea refused /__fail: ${r.text}`);
  }

  /** The authorized_keys file it wrote, as sshd reads it. */
  async keysFile(): Promise<string> {
    return (await run("docker", ["exec", this.container, "cat", KEYS_FILE])).stdout;
  }
}

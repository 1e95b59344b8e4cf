/**
 * The Gitea deploy-key calls the gate and the host make (src/shared/gitea.ts), in process against
 * the fake Gitea (test/fixtures/fake-gitea.mjs) run here on loopback: the key's life, and errors
 * that name the call and what the server said — never the token.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import {
  addDeployKey,
  deleteDeployKeys,
  deployKeyTitle,
  GiteaError,
  listDeployKeys,
  type GiteaTarget,
} from "../../../src/shared/gitea.js";

const TOKEN = "gtea_0123456789abcdef0123";
const PORT = 39000 + Math.floor(Math.random() * 1000);

describe("Gitea deploy keys, against the fake Gitea on loopback", () => {
  let server: ChildProcess;
  let dir = "";
  let pub = "";
  const target: GiteaTarget = {
    apiUrl: `http://gitea.test:${PORT}`,
    repo: "team/app",
    token: TOKEN,
    // The name is mapped as a bottle's extra_hosts would map it.
    extraHosts: { "gitea.test": "127.0.0.1" },
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bb-gitea-"));
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "k")]);
    pub = (await run("cat", [join(dir, "k.pub")])).stdout.trim();
    server = spawn("node", [join(import.meta.dirname, "../../fixtures/fake-gitea.mjs")], {
      env: {
        ...process.env,
        PORT: String(PORT),
        GITEA_TOKEN: TOKEN,
        GITEA_REPOS: "team/app",
        KEYS_FILE: join(dir, "authorized_keys"),
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      server.stdout?.on("data", (c: Buffer) => {
        if (c.toString().includes("listening")) resolve();
      });
      server.once("exit", (code) => reject(new Error(`the fake Gitea exited (${code})`)));
    });
  });

  after(async () => {
    server.kill();
    await rm(dir, { recursive: true, force: true });
  });

  test("a key is added under the bottle's title, listed, and deleted by that title", async () => {
    const title = deployKeyTitle("coder-abc123");
    assert.equal(title, "bot-bottle coder-abc123");
    const id = await addDeployKey(target, title, pub);
    assert.ok(id > 0);
    assert.deepEqual(
      (await listDeployKeys(target)).map((k) => [k.id, k.title]),
      [[id, title]],
    );
    assert.equal(await deleteDeployKeys(target, "bot-bottle someone-else"), 0, "others' keys stay");
    assert.equal(await deleteDeployKeys(target, title), 1);
    assert.deepEqual(await listDeployKeys(target), []);
  });

  test("failures name the call and the server's answer, never the token", async () => {
    const refusals: [GiteaTarget, RegExp][] = [
      [
        { ...target, token: "wrong" },
        /listing the deploy keys of team\/app: the token was refused/,
      ],
      [{ ...target, repo: "team/none" }, /team\/none: no such repository/],
      [
        { ...target, apiUrl: `http://gitea.test:${PORT + 1}` },
        /GET http:\/\/gitea\.test:\d+\/api\/v1\/repos\/team\/app\/keys: connect ECONNREFUSED/,
      ],
    ];
    for (const [t, message] of refusals) {
      const err = await listDeployKeys(t).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof GiteaError, String(err));
      assert.match(err.message, message);
      assert.ok(!err.message.includes(TOKEN));
    }
    const dup = await addDeployKey(target, "a", pub);
    const again = await addDeployKey(target, "b", pub).catch((e: unknown) => e);
    assert.ok(again instanceof GiteaError);
    assert.match(
      again.message,
      /registering a deploy key on team\/app: HTTP 422 \(.*already been added/,
    );
    await deleteDeployKeys(target, "a");
    assert.ok(dup > 0);
  });
});

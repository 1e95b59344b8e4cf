/**
 * The git gate's hooks as thin clients (images/bundle/git-gate-hooks: a sh wrapper and
 * gate-hook.pl) calling the gate's hook server (hooks.ts) over its unix socket, in process. The
 * pushes are real: the host's git pushes into a bare "mirror" whose hooksPath is the bundle's
 * hooks directory, so receive-pack runs the client with the quarantine it really sets up, and the
 * handler (a test's own) sees the pushed objects through it.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Server } from "node:net";
import { run } from "../../../src/exec/run.js";
import type { GitGateConfig } from "../../../src/shared/git-gate-config.js";
import type { HookCall, HookHandler } from "../../../src/sidecars/git-gate/hooks.js";

const HOOKS = resolve("images/bundle/git-gate-hooks");
const root = await mkdtemp(join(tmpdir(), "bot-bottle-git-hooks-"));
// The gate reads where its mirrors are once, at import.
process.env["BOT_BOTTLE_GIT_GATE_ROOT"] = join(root, "mirrors");
const { serveHooks, parseCall, checkQuarantine } =
  await import("../../../src/sidecars/git-gate/hooks.js");

const MIRROR = join(root, "mirrors", "app.git");
const SOCKET = join(root, "hooks.sock");
const CONFIG = { repos: [] } as unknown as GitGateConfig;
const GIT_ENV: NodeJS.ProcessEnv = {
  PATH: process.env["PATH"],
  HOME: root,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "T",
  GIT_AUTHOR_EMAIL: "t@example.test",
  GIT_COMMITTER_NAME: "T",
  GIT_COMMITTER_EMAIL: "t@example.test",
  BOT_BOTTLE_GIT_GATE_SOCKET: SOCKET,
};
const git = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  run("git", args, { cwd, env: { ...GIT_ENV, ...env }, okExitCodes: [0, 1, 128] });

/** What the current test's handler does; each test sets it. */
let handle: HookHandler = () => Promise.resolve(0);
const calls: HookCall[] = [];
let server: Server;
let work: string;

before(async () => {
  await mkdir(MIRROR, { recursive: true });
  await git(MIRROR, ["init", "-q", "--bare", "--initial-branch=main", "."]);
  await git(MIRROR, ["config", "core.hooksPath", HOOKS]);
  work = join(root, "work");
  await git(root, ["init", "-q", "--initial-branch=main", work]);
  await git(work, ["commit", "-q", "--allow-empty", "-m", "first"]);
  const record: HookHandler = (call) => {
    calls.push(call);
    return handle(call);
  };
  server = await serveHooks(
    SOCKET,
    () => CONFIG,
    { "pre-receive": record, access: record },
    () => undefined,
  );
});
after(async () => {
  server.close();
  await rm(root, { recursive: true, force: true });
});

describe("the hooks call the gate's daemon", () => {
  test("only the gate's user can open the socket", async () => {
    assert.equal((await stat(SOCKET)).mode & 0o777, 0o600);
  });

  test("a push the gate accepts lands; the handler sees the refs, the mirror and the pushed objects", async () => {
    calls.length = 0;
    let seen = "";
    handle = async (call) => {
      // The pushed commit is in quarantine: visible only through the variables the client sent.
      const [, tip = ""] = call.stdin.toString().split(" ");
      seen = (await git(call.cwd, ["cat-file", "-t", tip], call.quarantine)).stdout.trim();
      call.stderr("checked by the gate\n");
      return 0;
    };
    const pushed = await git(work, ["push", MIRROR, "HEAD:refs/heads/main"]);
    assert.equal(pushed.exitCode, 0, pushed.stderr);
    assert.match(pushed.stderr, /remote: checked by the gate/);
    assert.equal(calls.length, 1);
    const call = calls[0] as HookCall;
    assert.equal(resolve(call.cwd), MIRROR);
    const head = (await git(work, ["rev-parse", "HEAD"])).stdout.trim();
    assert.equal(call.stdin.toString(), `${"0".repeat(40)} ${head} refs/heads/main\n`);
    assert.deepEqual(Object.keys(call.quarantine).sort(), [
      "GIT_ALTERNATE_OBJECT_DIRECTORIES",
      "GIT_OBJECT_DIRECTORY",
      "GIT_QUARANTINE_PATH",
    ]);
    assert.equal(seen, "commit");
    assert.equal((await git(MIRROR, ["rev-parse", "main"])).stdout.trim(), head);
  });

  test("a push the gate refuses fails with the gate's words, and the mirror does not move", async () => {
    const before = (await git(MIRROR, ["rev-parse", "main"])).stdout.trim();
    await git(work, ["commit", "-q", "--allow-empty", "-m", "second"]);
    handle = (call) => {
      call.stderr("bot-bottle git-gate: push refused: a secret\n");
      return Promise.resolve(1);
    };
    const pushed = await git(work, ["push", MIRROR, "HEAD:refs/heads/main"]);
    assert.notEqual(pushed.exitCode, 0);
    assert.match(pushed.stderr, /remote: bot-bottle git-gate: push refused: a secret/);
    assert.match(pushed.stderr, /pre-receive hook declined/);
    assert.equal((await git(MIRROR, ["rev-parse", "main"])).stdout.trim(), before);
  });

  test("a handler that throws refuses the push, saying so", async () => {
    handle = () => Promise.reject(new Error("scanner crashed"));
    const pushed = await git(work, ["push", MIRROR, "HEAD:refs/heads/main"]);
    assert.notEqual(pushed.exitCode, 0);
    assert.match(pushed.stderr, /bot-bottle git-gate: internal error: scanner crashed/);
  });

  test("a pre-receive's input of many refs arrives whole", async () => {
    calls.length = 0;
    handle = () => Promise.resolve(0);
    const input = Array.from(
      { length: 20_000 },
      (_, i) => `${"0".repeat(40)} ${"1".repeat(40)} refs/heads/b${i}`,
    ).join("\n");
    const ran = await run("sh", [join(HOOKS, "pre-receive")], {
      cwd: MIRROR,
      env: GIT_ENV,
      input,
      okExitCodes: [0, 1],
    });
    assert.equal(ran.exitCode, 0, ran.stderr);
    assert.equal(calls[0]?.stdin.toString(), input);
  });

  test("the access hook passes git daemon's arguments and prints on stdout; a push goes straight through", async () => {
    calls.length = 0;
    handle = (call) => {
      call.stdout(`bot-bottle git-gate: ${call.args.join(" ")} is not served\n`);
      return Promise.resolve(1);
    };
    const args = ["upload-pack", "/app.git", "host", "canon", "10.0.0.2", "9418"];
    const refused = await run("sh", [join(HOOKS, "access"), ...args], {
      env: GIT_ENV,
      okExitCodes: [0, 1],
    });
    assert.equal(refused.exitCode, 1);
    assert.equal(refused.stdout, `bot-bottle git-gate: ${args.join(" ")} is not served\n`);
    assert.deepEqual(calls[0]?.args, args);
    calls.length = 0;
    const push = await run("sh", [join(HOOKS, "access"), "receive-pack", "/app.git"], {
      env: GIT_ENV,
    });
    assert.equal(push.exitCode, 0);
    assert.equal(calls.length, 0, "a push is decided by pre-receive, not here");
  });

  test("with no gate answering, a hook refuses (fails closed) and says why", async () => {
    const gone = { ...GIT_ENV, BOT_BOTTLE_GIT_GATE_SOCKET: join(root, "nothing.sock") };
    const pushed = await git(work, ["push", MIRROR, "HEAD:refs/heads/main"], gone);
    assert.notEqual(pushed.exitCode, 0);
    assert.match(pushed.stderr, /bot-bottle git-gate: the gate is not answering/);
    const access = await run("sh", [join(HOOKS, "access"), "upload-pack", "/app.git"], {
      env: gone,
      okExitCodes: [0, 1],
    });
    assert.equal(access.exitCode, 1);
    assert.match(access.stdout, /^bot-bottle git-gate: the gate is not answering/);
  });

  test("a call whose quarantine lies outside its mirror is refused before any handler runs", async () => {
    calls.length = 0;
    handle = () => Promise.resolve(0);
    for (const [name, value] of [
      ["GIT_OBJECT_DIRECTORY", "/etc"],
      ["GIT_ALTERNATE_OBJECT_DIRECTORIES", `${MIRROR}/objects:/root/.ssh`],
      ["GIT_QUARANTINE_PATH", `${MIRROR}/objects/../../other.git/objects`],
    ] as const) {
      const ran = await run("sh", [join(HOOKS, "pre-receive")], {
        cwd: MIRROR,
        env: { ...GIT_ENV, [name]: value },
        input: "",
        okExitCodes: [0, 1],
      });
      assert.equal(ran.exitCode, 1, name);
      assert.match(ran.stderr, new RegExp(`${name} lies outside the mirror's objects`));
    }
    const outside = await run("sh", [join(HOOKS, "pre-receive")], {
      cwd: root,
      env: GIT_ENV,
      input: "",
      okExitCodes: [0, 1],
    });
    assert.match(outside.stderr, /the hook does not run in a mirror/);
    assert.equal(calls.length, 0);
  });
});

describe("a call is parsed strictly", () => {
  const call = (...fields: string[]) => Buffer.from(fields.map((f) => `${f}\0`).join("") + "\0");

  test("fields, an empty value and the input after the head", () => {
    const parsed = parseCall(
      Buffer.concat([call("hook", "access", "arg", "", "arg", "x"), Buffer.from("in\0put")]),
    );
    assert.ok(typeof parsed !== "string");
    assert.deepEqual(parsed.args, ["", "x"]);
    assert.equal(parsed.stdin.toString(), "in\0put");
  });

  test("a variable outside the quarantine, an unknown field, an unterminated head: each refused", () => {
    assert.match(
      parseCall(call("env", "GIT_DIR=/etc")) as string,
      /a variable the gate does not take/,
    );
    assert.match(parseCall(call("env", "LD_PRELOAD=/x.so")) as string, /does not take/);
    assert.match(parseCall(call("shell", "rm -rf /")) as string, /an unknown field/);
    assert.match(parseCall(Buffer.from("hook\0access")) as string, /unterminated/);
  });

  test("quarantine paths: inside the mirror's objects only", () => {
    const q = `${MIRROR}/objects/tmp_objdir-incoming-abc`;
    assert.equal(
      checkQuarantine(MIRROR, {
        GIT_OBJECT_DIRECTORY: q,
        GIT_QUARANTINE_PATH: q,
        GIT_ALTERNATE_OBJECT_DIRECTORIES: `${MIRROR}/objects`,
      }),
      undefined,
    );
    assert.match(checkQuarantine(join(root, "mirrors"), {}) as string, /not run in a mirror/);
    assert.match(
      checkQuarantine(MIRROR, { GIT_OBJECT_DIRECTORY: `${MIRROR}/objects-evil` }) as string,
      /outside/,
    );
  });
});

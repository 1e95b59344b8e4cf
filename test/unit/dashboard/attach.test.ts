/**
 * ⏎ inside tmux: the window's command line (which the host's `ps` shows) carries the engine,
 * state and manifest variables `attach` needs, and none of the shell's others — tokens included.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { insideTmux, tmuxWindowArgs } from "../../../src/dashboard/attach.js";

describe("the tmux window ⏎ opens", () => {
  test("runs this bot-bottle's attach, passing only what attach reads", () => {
    const env = {
      HOME: "/home/op",
      PATH: "/usr/bin",
      DOCKER_HOST: "unix:///run/user/1000/docker.sock",
      XDG_STATE_HOME: "/home/op/.state",
      BOT_BOTTLE_MANIFEST: "/home/op/bot-bottle.json",
      ANTHROPIC_API_KEY: "sk-ant-api03-secret",
      GITHUB_TOKEN: "ghp_secret",
      TMUX: "/tmp/tmux-0/default,1,0",
    };
    const args = tmuxWindowArgs("coder-abc123", env, "/opt/bot-bottle/dist/bot-bottle.js");
    assert.deepEqual(args.slice(0, 3), ["new-window", "-n", "coder-abc123"]);
    assert.deepEqual(args.slice(-4), [
      process.execPath,
      "/opt/bot-bottle/dist/bot-bottle.js",
      "attach",
      "coder-abc123",
    ]);
    const passed = args.filter((_, i) => args[i - 1] === "-e");
    assert.deepEqual(passed.sort(), [
      "BOT_BOTTLE_MANIFEST=/home/op/bot-bottle.json",
      "DOCKER_HOST=unix:///run/user/1000/docker.sock",
      "HOME=/home/op",
      "PATH=/usr/bin",
      "XDG_STATE_HOME=/home/op/.state",
    ]);
    assert.ok(!args.join(" ").includes("secret"), args.join(" "));
  });

  test("only a set TMUX means inside tmux", () => {
    assert.equal(insideTmux({ TMUX: "/tmp/tmux-0/default,1,0" }), true);
    assert.equal(insideTmux({ TMUX: "" }), false);
    assert.equal(insideTmux({}), false);
  });
});

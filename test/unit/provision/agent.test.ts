import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { AgentProvisionPlan } from "../../../src/backends/plan.js";
import { run } from "../../../src/exec/run.js";
import {
  checkReport,
  provisionFiles,
  provisionScript,
  ProvisionError,
  shellWord,
} from "../../../src/provision/agent.js";

/** Runs the provisioning script with a local sh, in a scratch HOME: what the agent would run. */
async function runScript(plan: AgentProvisionPlan, home: string) {
  const files = await provisionFiles(plan);
  const { stdout } = await run("sh", ["-s"], {
    input: provisionScript(files, plan),
    env: { HOME: home, PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
  });
  return { files, stdout };
}

describe("provisioning the agent's home", () => {
  test("writes each file with its mode, copies skills, sets the git identity, and reports them", async () => {
    const home = await mkdtemp(join(tmpdir(), "bb-home-"));
    const skill = await mkdtemp(join(tmpdir(), "bb-skill-"));
    await writeFile(join(skill, "SKILL.md"), "---\nname: lint\n---\nRun the linter.\n");
    await mkdir(join(skill, "scripts"));
    await writeFile(join(skill, "scripts", "run.sh"), "#!/bin/sh\necho ok\n", { mode: 0o755 });
    const hostile = 'it\'s $(touch pwned) `x` "q" \\ \n; rm -rf /';
    const plan: AgentProvisionPlan = {
      files: [
        { path: `${home}/.config/a b/c.json`, content: hostile, mode: 0o600, what: "a file" },
      ],
      skills: [{ host: skill, container: `${home}/.claude/skills/lint` }],
      gitUser: { name: "O'Brien $(id)", email: "bot@example.com" },
    };
    const { files, stdout } = await runScript(plan, home);
    checkReport(stdout, files, plan);
    assert.equal(await readFile(`${home}/.config/a b/c.json`, "utf8"), hostile);
    assert.equal((await stat(`${home}/.config/a b/c.json`)).mode & 0o777, 0o600);
    assert.equal(
      await readFile(`${home}/.claude/skills/lint/SKILL.md`, "utf8"),
      "---\nname: lint\n---\nRun the linter.\n",
    );
    assert.equal((await stat(`${home}/.claude/skills/lint/scripts/run.sh`)).mode & 0o777, 0o755);
    const git = await run("git", ["config", "--global", "--get", "user.name"], {
      env: { HOME: home, PATH: process.env["PATH"] ?? "" },
    });
    assert.equal(git.stdout.trim(), "O'Brien $(id)");
    await assert.rejects(stat(join(process.cwd(), "pwned")), "no text was run as a command");
  });

  test("a report that does not match what was sent fails, naming the step", async () => {
    const home = await mkdtemp(join(tmpdir(), "bb-home-"));
    const plan: AgentProvisionPlan = {
      files: [{ path: `${home}/p.md`, content: "hello", mode: 0o644, what: "the agent's prompt" }],
      skills: [],
      gitUser: { name: "A", email: "a@example.com" },
    };
    const { files, stdout } = await runScript(plan, home);
    checkReport(stdout, files, plan);
    const tampered = stdout.replace(/^[0-9a-f]{64}/m, "0".repeat(64));
    assert.throws(
      () => checkReport(tampered, files, plan),
      (e: unknown) => e instanceof ProvisionError && /the agent's prompt/.test(e.message),
    );
    assert.throws(
      () => checkReport(stdout.replace("a@example.com", "b@example.com"), files, plan),
      /git identity \(user.email\)/,
    );
  });

  test("a skill folder holding a link is refused before anything runs", async () => {
    const skill = await mkdtemp(join(tmpdir(), "bb-skill-"));
    await symlink("/etc/shadow", join(skill, "SKILL.md"));
    await assert.rejects(
      provisionFiles({
        files: [],
        skills: [{ host: skill, container: "/home/node/.claude/skills/x" }],
      }),
      /neither a file nor a folder/,
    );
  });

  test("two skills with one folder name are refused", async () => {
    const a = await mkdtemp(join(tmpdir(), "bb-a-"));
    await assert.rejects(
      provisionFiles({
        files: [],
        skills: [
          { host: a, container: "/h/.claude/skills/s" },
          { host: a + "2", container: "/h/.claude/skills/s" },
        ],
      }),
      /same folder name/,
    );
  });

  test("shellWord quotes anything as one word", async () => {
    for (const value of ["", "a b", "it's", "$(id)", "`x`", "\n\t", "\\'"]) {
      const { stdout } = await run("sh", ["-c", `printf '%s' ${shellWord(value)}`]);
      assert.equal(stdout, value);
    }
  });
});

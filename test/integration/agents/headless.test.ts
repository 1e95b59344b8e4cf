/**
 * The real Claude Code and Codex CLIs in real bottles, end to end through the built CLI:
 * `bot-bottle run AGENT -- PROMPT` starts a fresh bottle, the agent asks a fake model API (a
 * container of the test's own, reached as api.anthropic.com and api.openai.com through the
 * bottle's egress), the scripted answer is a tool call that writes a file in the workspace, and
 * the agent runs it. The fake must receive the real key; the agent must hold only the placeholder.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { TestBottles } from "../../helpers/bottles.js";
import { fakeModelCerts, modelRequests, type FakeModel } from "../../helpers/fake-model.js";

const ANTHROPIC_KEY = `sk-ant-api03-${randomBytes(60).toString("base64url")}AA`;
const OPENAI_KEY = `sk-proj-${randomBytes(48).toString("base64url")}`;

const t = new TestBottles();
const claudeAgent = t.agent("claude");
const codexAgent = t.agent("codex");

describe("claude and codex, headless, in real bottles", { timeout: 25 * 60_000 }, () => {
  let model: FakeModel;

  before(async () => {
    await t.setup({ agents: {}, bottles: {} });
    const certs = join(t.dir, "certs");
    await fakeModelCerts(certs);
    const net = await t.network([]);
    model = await t.fakeModel(certs, net);
    const bottle = {
      egress: {
        routes: [],
        extra_hosts: { "api.anthropic.com": model.ip, "api.openai.com": model.ip },
        trust_ca: join(certs, "ca", "ca.crt"),
        network: net,
      },
    };
    await writeFile(
      t.manifest,
      JSON.stringify({
        agents: {
          [claudeAgent]: { template: "claude", bottle: "box", prompt: "You are in a test." },
          // An unknown model slug: codex then offers plain function tools such as exec_command.
          [codexAgent]: { template: "codex", bottle: "box", model: "gpt-fake" },
        },
        bottles: { box: bottle },
      }),
    );
    t.env = { ...t.env, ANTHROPIC_API_KEY: ANTHROPIC_KEY, OPENAI_API_KEY: OPENAI_KEY };
    // The images (the CLIs installed from npm) are built once, outside the timed runs.
    const built = await t.cli(["images", "build", "claude", "codex"], 20 * 60_000);
    assert.equal(built.code, 0, built.stderr);
  });
  after(() => (process.env["KEEP"] ? undefined : t.teardown()));

  for (const c of [
    {
      name: "claude",
      agent: claudeAgent,
      file: "by-claude.txt",
      header: "x-api-key",
      value: ANTHROPIC_KEY,
      path: "/v1/messages",
      keyEnv: "ANTHROPIC_API_KEY",
    },
    {
      name: "codex",
      agent: codexAgent,
      file: "by-codex.txt",
      header: "authorization",
      value: `Bearer ${OPENAI_KEY}`,
      path: "/v1/responses",
      keyEnv: "OPENAI_API_KEY",
    },
  ])
    test(`${c.name}: run -> the tool call writes into the workspace; the fake got the real key; the agent holds only the placeholder`, async () => {
      const r = await t.cli(
        ["run", c.agent, "--keep", "--", `RUN: echo made by ${c.name} > ${c.file}`],
        10 * 60_000,
      );
      assert.equal(r.code, 0, `run failed:\n${r.stderr}\n${r.stdout}`);
      assert.match(r.stdout, /done:/, "the agent's answer is streamed to stdout");
      assert.equal((await readFile(join(t.workspace, c.file), "utf8")).trim(), `made by ${c.name}`);
      const slug = /\b(\S+-[a-z0-9]{6}) is still running/.exec(r.stderr)?.[1] ?? "";
      assert.ok(slug.startsWith(c.agent), `the slug is named: ${r.stderr}`);

      const calls = (await modelRequests(model.container)).filter(
        (q) => q.url.startsWith(c.path) && JSON.stringify(q.json ?? "").includes(c.file),
      );
      assert.ok(calls.length >= 2, "the prompt, then the tool's result");
      for (const q of calls) assert.equal(q.headers[c.header], c.value, "the real key arrived");

      // Inside: the placeholder under the name the CLI reads, and the real key nowhere.
      const real = c.value.replace(/^Bearer /, "");
      const placeholder = placeholderFor(real, c.keyEnv, slug);
      const env = await t.sh(slug, `printenv ${c.keyEnv}`);
      assert.equal(env.stdout.trim(), placeholder);
      assert.notDeepEqual(
        await t.secretPlaces(slug, placeholder),
        [],
        "the search finds what is there (the placeholder, in the agent's environment)",
      );
      assert.deepEqual(await t.secretPlaces(slug, real), [], "the real key is nowhere inside");
      const stop = await t.cli(["stop", slug]);
      assert.equal(stop.code, 0, stop.stderr);
    });
});

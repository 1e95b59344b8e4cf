/**
 * Supervise end to end: from inside a real bottle the agent asks through the bundle's MCP server
 * (a plain MCP client over HTTP, then the real `claude` and `codex` through their registrations); the request
 * waits in the queue `bot-bottle requests` shows on the host; `approve --for`, `deny` and `answer`
 * decide it; an approved route works in the running bottle with no restart, and is refused again
 * once its lease ends. The fake model API container stands in for the new host too.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../../src/exec/run.js";
import { parseSuperviseRecord, type SuperviseRecord } from "../../../src/shared/supervise.js";
import { TestBottles } from "../../helpers/bottles.js";
import {
  callTool,
  curlFrom,
  installMcpClient,
  listTools,
  requestIdOf,
  SUPERVISE_MCP,
} from "../../helpers/supervise.js";
import { fakeModelCerts, type FakeModel } from "../../helpers/fake-model.js";

const ANTHROPIC_KEY = `sk-ant-api03-${randomBytes(60).toString("base64url")}AA`;
const OPENAI_KEY = `sk-proj-${randomBytes(48).toString("base64url")}`;
const NEW_HOST = "new.example.test";

const t = new TestBottles();
const agent = t.agent("asks");
const claudeAgent = t.agent("claudeasks");
const codexAgent = t.agent("codexasks");

describe(
  "supervise: the agent asks, the operator decides, the bottle changes live",
  { timeout: 25 * 60_000 },
  () => {
    let model: FakeModel;
    let slug = "";

    /** A tool call from inside the bottle, through the MCP client fixture; its one-line result. */
    const call = (tool: string, args: Record<string, unknown> = {}) =>
      callTool(t, slug, tool, args);

    const curl = (host: string) => curlFrom(t, slug, host);

    const records = async (of = slug): Promise<SuperviseRecord[]> =>
      (
        await readFile(
          join(t.dir, "state", "bot-bottle", of, "audit", "supervise.jsonl"),
          "utf8",
        ).catch(() => "")
      )
        .split("\n")
        .filter(Boolean)
        .map((l) => parseSuperviseRecord(l, "supervise.jsonl"));

    const idOf = requestIdOf;

    before(async () => {
      await t.setup({});
      const certs = join(t.dir, "certs");
      await fakeModelCerts(certs, [NEW_HOST, "deny.example.test"]);
      const net = await t.network([]);
      model = await t.fakeModel(certs, net);
      const egress = {
        routes: [],
        extra_hosts: {
          "api.anthropic.com": model.ip,
          "api.openai.com": model.ip,
          [NEW_HOST]: model.ip,
          "deny.example.test": model.ip,
        },
        trust_ca: join(certs, "ca", "ca.crt"),
        network: net,
      };
      await writeFile(
        t.manifest,
        JSON.stringify({
          agents: {
            [agent]: { template: "shell", bottle: "asks" },
            [claudeAgent]: { template: "claude", bottle: "asks" },
            // An unknown model slug: codex then offers plain function tools and one namespace
            // per MCP server.
            [codexAgent]: { template: "codex", bottle: "asks", model: "gpt-fake" },
          },
          bottles: { asks: { egress, supervise: { wait: "2s", timeout: "1h" } } },
        }),
      );
      t.env = { ...t.env, ANTHROPIC_API_KEY: ANTHROPIC_KEY, OPENAI_API_KEY: OPENAI_KEY };
      slug = await t.start(agent);
      await installMcpClient(t, slug);
    });

    after(() => (process.env["KEEP"] ? undefined : t.teardown()));

    test("the agent's MCP server lists the four tools", async () => {
      assert.deepEqual((await listTools(t, slug)).sort(), [
        "ask_operator",
        "request_egress_route",
        "request_git_repo",
        "request_status",
      ]);
    });

    test("a refused host, asked for: pending, approved --for 3s, works with no restart, then refused again", async () => {
      assert.deepEqual(await curl(NEW_HOST), { status: "403", tag: "not-in-routes" });
      const started = async () =>
        (
          await run("docker", [
            "inspect",
            "--format",
            "{{.State.StartedAt}}",
            `bot-bottle-${slug}-bundle`,
          ])
        ).stdout.trim();
      const startedBefore = await started();

      const asked = await call("request_egress_route", {
        host: NEW_HOST,
        methods: ["GET"],
        reason: "the docs live there",
      });
      assert.match(asked, /^pending: request r-[a-z0-9]{10} /);
      const id = idOf(asked);

      const listed = await t.cli(["requests", slug, "--json"]);
      assert.equal(listed.code, 0, listed.stderr);
      const entry = listed.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: string; status: string; request: { host?: string } })
        .find((e) => e.id === id);
      assert.equal(entry?.status, "pending");
      assert.equal(entry?.request.host, NEW_HOST);

      const clock = Date.now();
      const approved = await t.cli(["approve", id, "--for", "3s"]);
      assert.equal(approved.code, 0, approved.stderr);
      let now = await curl(NEW_HOST);
      while (now.tag && Date.now() - clock < 10_000) now = await curl(NEW_HOST);
      const latency = Date.now() - clock;
      // The fake answers any path it does not know with 404: what matters is that the proxy let it out.
      assert.deepEqual(now, { status: "404", tag: "" });
      console.log(`# approval to route working: ${latency} ms (approve command included)`);
      assert.equal(await started(), startedBefore, "the bundle was not restarted");
      assert.match(
        await call("request_status", { id }),
        /^approved for 3s: new\.example\.test GET/,
      );

      await sleep(3500);
      assert.deepEqual(await curl(NEW_HOST), { status: "403", tag: "not-in-routes" });
      await sleep(500);
      const events = (await records()).filter((r) => "id" in r && r.id === id).map((r) => r.event);
      assert.deepEqual(events, ["request", "decided", "expired"]);
    });

    test("deny and answer reach the agent as the tool's result", async () => {
      const asked = await call("request_egress_route", { host: "deny.example.test", reason: "x" });
      const id = idOf(asked);
      const denied = await t.cli(["deny", id, "--reason", "not for this task"]);
      assert.equal(denied.code, 0, denied.stderr);
      assert.equal(await call("request_status", { id }), "denied: not for this task");
      assert.deepEqual(await curl("deny.example.test"), { status: "403", tag: "not-in-routes" });

      const question = await call("ask_operator", { question: "which branch should I use?" });
      const qid = idOf(question);
      const answered = await t.cli(["answer", qid, "use release-2"]);
      assert.equal(answered.code, 0, answered.stderr);
      assert.equal(await call("request_status", { id: qid }), "answer: use release-2");
    });

    test("what is dangerous is refused at once, and the agent cannot decide for itself", async () => {
      assert.match(
        await call("request_egress_route", { host: "*.com", reason: "all" }),
        /^refused: /,
      );
      assert.match(
        await call("request_egress_route", { host: "169.254.169.254", reason: "metadata" }),
        /^refused: /,
      );
      assert.match(
        await call("request_status", { id: "r-0000000000" }),
        /^refused: there is no request r-0000000000/,
      );
      // The queue and the decisions live on the host: nothing of them is in the agent.
      const look = await t.sh(
        slug,
        "ls /etc/bot-bottle 2>&1; curl -s -m 3 http://supervise:9100/decisions 2>&1 | head -c 200",
      );
      assert.match(look.stdout, /No such file or directory/);
      const forged = await t.sh(
        slug,
        `curl -s -m 5 -X POST -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"approve","arguments":{"id":"r-0000000000"}}}' ${SUPERVISE_MCP}`,
      );
      assert.doesNotMatch(forged.stdout, /approved/);
    });

    /**
     * `bot-bottle run AGENT --keep` with a prompt that has the fake model call ask_operator; its
     * output, and the bottle kept, whose audit must hold the question as sent.
     */
    const askThroughRun = async (name: string, image: string, question: string) => {
      const built = await t.cli(["images", "build", image], 20 * 60_000);
      assert.equal(built.code, 0, built.stderr);
      const r = await t.cli(
        [
          "run",
          name,
          "--keep",
          "--",
          `CALL: mcp__supervise__ask_operator ${JSON.stringify({ question })}`,
        ],
        600_000,
      );
      assert.equal(r.code, 0, r.stderr);
      const kept = (
        JSON.parse((await t.cli(["ls", "--json"])).stdout) as { slug: string; agent: string }[]
      ).find((b) => b.agent === name);
      assert.ok(kept, `the kept ${image} bottle`);
      const asked = (await records(kept.slug)).find((x) => x.event === "request");
      assert.ok(asked && asked.event === "request" && asked.request.kind === "question");
      assert.equal(asked.request.kind === "question" ? asked.request.question : "", question);
      return { stdout: r.stdout, slug: kept.slug };
    };

    test("the real claude calls a supervise tool through its MCP registration", async () => {
      const { stdout, slug: kept } = await askThroughRun(
        claudeAgent,
        "claude",
        "may I refactor the parser?",
      );
      assert.match(stdout, /done: pending: request r-[a-z0-9]{10}/);
      // Registered at provisioning, and connected: what `claude mcp list` says in the bottle.
      const listed = await t.cli(["exec", kept, "--", "claude", "mcp", "list"], 120_000);
      assert.match(listed.stdout, /supervise: http:\/\/supervise:9100\/mcp \(HTTP\) - .*Connected/);
    });

    test("the real codex calls a supervise tool through its MCP registration", async () => {
      const { stdout } = await askThroughRun(codexAgent, "codex", "may codex rename the module?");
      // The tool's result reached the model (codex adds its wall time), which said it back.
      assert.match(stdout, /done: [\s\S]*pending: request r-[a-z0-9]{10}/);
    });
  },
);

/**
 * Fail closed, seen from the host: a supervise that is up but answers nothing (its process
 * frozen with SIGSTOP inside the bundle, its port still open) turns the bundle's engine health
 * check unhealthy, and `bot-bottle ls` and `bot-bottle doctor` name it. First the same bottle
 * answering, read the same ways; last the same daemon thawed, and both say so again. The check
 * runs every second here (BOT_BOTTLE_HEALTH_INTERVAL); in use it runs every 60 s.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../../src/exec/run.js";
import { parseInitStatus } from "../../../src/shared/init-config.js";
import { TestBottles } from "../../helpers/bottles.js";

const t = new TestBottles();
const agent = t.agent("health");

interface Row {
  slug: string;
  state: string;
  health?: { status: string; report?: { daemons: { name: string; answering?: boolean }[] } };
}
interface DoctorRow {
  name: string;
  status: string;
  detail: string;
  remedy?: string;
}

describe(
  "a supervise that does not answer is reported by ls and doctor",
  { timeout: 10 * 60_000 },
  () => {
    let slug = "";
    let bundle = "";
    let supervisePid = 0;

    /** `ls`'s line for this bottle (the engine may hold other bottles too). */
    const lsLine = async (): Promise<string> => {
      const r = await t.cli(["ls"]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split("\n").find((l) => l.startsWith(`${slug} `)) ?? "";
    };
    const lsJson = async (): Promise<Row | undefined> => {
      const r = await t.cli(["ls", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as Row[]).find((b) => b.slug === slug);
    };
    const doctorRow = async (): Promise<DoctorRow | undefined> => {
      const r = await t.cli(["doctor", "--json"]);
      return (JSON.parse(r.stdout) as DoctorRow[]).find((c) => c.name === `bottle ${slug}`);
    };
    /** The engine's verdict on the bundle, read straight from docker. */
    const engineHealth = async (): Promise<string> =>
      (
        await run("docker", ["inspect", "--format", "{{.State.Health.Status}}", bundle])
      ).stdout.trim();
    const until = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
      const deadline = Date.now() + 90_000;
      for (;;) {
        const value = await probe();
        if (value !== undefined) return value;
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await sleep(500);
      }
    };
    /** curl from the agent to supervise's health endpoint: its status, or curl's exit code. */
    const agentReachesSupervise = async (): Promise<string> => {
      const r = await t.sh(
        slug,
        "curl -sS -m 3 -o /dev/null -w '%{http_code}' http://supervise:9100/health; echo \" exit=$?\"",
      );
      return r.stdout.trim();
    };
    const initEvents = async (event: string) => {
      const r = await t.cli(["logs", slug, "--json"]);
      return r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e["component"] === "init" && e["event"] === event);
    };

    before(async () => {
      await t.setup(TestBottles.shellManifest([agent]));
      t.env = { ...t.env, BOT_BOTTLE_HEALTH_INTERVAL: "1" };
      slug = await t.start(agent);
      bundle = `bot-bottle-${slug}-bundle`;
    });

    after(async () => {
      if (supervisePid)
        await run("docker", ["exec", bundle, "sh", "-c", `kill -CONT ${supervisePid}`], {
          okExitCodes: [0, 1],
        });
      if (!process.env["KEEP"]) await t.teardown();
    });

    test("a bundle that answers: healthy, ls says running, doctor has no line for it", async () => {
      await until("the bundle's first passing check", async () =>
        (await engineHealth()) === "healthy" ? true : undefined,
      );
      assert.match(
        await lsLine(),
        new RegExp(`^${slug}\\s+${agent}\\s+box\\s+docker\\s+running\\s+\\d{4}-`),
      );
      assert.deepEqual((await lsJson())?.health, { status: "healthy" });
      assert.equal(await doctorRow(), undefined);
      assert.equal(await agentReachesSupervise(), "200 exit=0");
    });

    test("a frozen supervise: unhealthy, ls and doctor name it and say what to do", async () => {
      const { stdout } = await run(
        "docker",
        ["exec", bundle, "node", "/opt/bot-bottle/sidecars/init/health.js"],
        { okExitCodes: [0, 1] },
      );
      const supervise = parseInitStatus(stdout.trim(), "init").daemons.find(
        (d) => d.name === "supervise",
      );
      assert.ok(supervise?.pid, stdout);
      supervisePid = supervise.pid;
      await run("docker", ["exec", bundle, "sh", "-c", `kill -STOP ${supervisePid}`]);
      // It is up but answers nothing: the agent's request times out (curl's 28), not refused.
      assert.equal(await agentReachesSupervise(), "000 exit=28");

      const line = await until("ls to name supervise", async () => {
        const l = await lsLine();
        return /running \(supervise not answering\)/.test(l) ? l : undefined;
      });
      assert.match(
        line,
        new RegExp(
          `^${slug}\\s+${agent}\\s+box\\s+docker\\s+running \\(supervise not answering\\)\\s+\\d{4}-`,
        ),
      );
      assert.equal(await engineHealth(), "unhealthy");
      const row = await lsJson();
      assert.equal(row?.state, "running");
      assert.equal(row?.health?.status, "unhealthy");
      assert.equal(
        row?.health?.report?.daemons.find((d) => d.name === "supervise")?.answering,
        false,
      );

      const doctor = await t.cli(["doctor"]);
      assert.equal(doctor.code, 3, doctor.stdout + doctor.stderr);
      assert.match(
        doctor.stdout,
        new RegExp(
          `^FAIL\\s+bottle ${slug}\\s+supervise does not answer its health check \\(since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\): its bundle reports not ready$`,
          "m",
        ),
      );
      assert.match(
        doctor.stdout,
        new RegExp(
          `→ supervise takes no request and applies no decision meanwhile, .*\`bot-bottle stop ${slug}\` \\(its state and audit are kept\\), then start the agent again$`,
          "m",
        ),
      );
      assert.match(doctor.stderr, new RegExp(`failed: .*bottle ${slug}`));
      assert.equal((await initEvents("daemon-silent")).length, 1, "logged once, not per probe");
    });

    test("supervise thawed: healthy again, ls says running, doctor's line is gone", async () => {
      await run("docker", ["exec", bundle, "sh", "-c", `kill -CONT ${supervisePid}`]);
      supervisePid = 0;
      await until("the bundle healthy again", async () =>
        (await engineHealth()) === "healthy" ? true : undefined,
      );
      assert.match(
        await lsLine(),
        new RegExp(`^${slug}\\s+${agent}\\s+box\\s+docker\\s+running\\s+\\d{4}-`),
      );
      assert.equal(await doctorRow(), undefined);
      assert.equal(await agentReachesSupervise(), "200 exit=0");
      assert.equal((await initEvents("daemon-silent")).length, 1);
      assert.equal((await initEvents("daemon-answering")).length, 1);
    });
  },
);

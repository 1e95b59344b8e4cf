import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigFileError } from "../../../src/shared/config-file.js";
import {
  parseInitConfig,
  parseInitStatus,
  type InitConfig,
} from "../../../src/shared/init-config.js";

const FILE = "/etc/bot-bottle/init.json";
const SECRET = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz";

const valid: InitConfig = {
  slug: "dev-7k2m9x",
  daemons: [
    {
      name: "egress",
      command: ["node", "/opt/bot-bottle/sidecars/egress/main.js", "--port", "9099"],
      port: 9099,
      reload: true,
    },
    { name: "git-gate", command: ["git", "daemon"], reload: false },
  ],
  healthPort: 9100,
  stopGraceMs: 3000,
};

function refusal(data: unknown): ConfigFileError {
  try {
    parseInitConfig(JSON.stringify(data), FILE);
  } catch (err) {
    assert.ok(err instanceof ConfigFileError, `expected a ConfigFileError, got ${String(err)}`);
    assert.ok(!err.message.includes(SECRET), `the message echoes a value: ${err.message}`);
    assert.ok(err.message.startsWith(`${FILE} is not a valid init config: `), err.message);
    return err;
  }
  throw new Error("expected the config to be refused, but it parsed");
}

const paths = (err: ConfigFileError) => err.problems.map((p) => p.path);

describe("the init config, parsed by the bundle's init", () => {
  test("a valid config parses to the same value", () => {
    assert.deepEqual(parseInitConfig(JSON.stringify(valid), FILE), valid);
  });

  test("refuses an unknown key, naming its path and not its value", () => {
    const err = refusal({ ...valid, daemons: [{ ...valid.daemons[0], env: { TOKEN: SECRET } }] });
    assert.deepEqual(paths(err), ["daemons[0].env"]);
    assert.match(err.message, /daemons\[0\]\.env is not a known field/);
  });

  test("refuses a wrong type, naming its path and not its value", () => {
    const err = refusal({
      ...valid,
      healthPort: SECRET,
      stopGraceMs: 2.5,
      daemons: [{ ...valid.daemons[1], command: SECRET }],
    });
    assert.deepEqual(paths(err), ["daemons[0].command", "healthPort", "stopGraceMs"]);
    assert.match(err.message, /healthPort must be a number/);
    assert.match(err.message, /stopGraceMs must be a whole number/);
    assert.match(err.message, /daemons\[0\]\.command must be a list/);
  });

  test("refuses a missing field, naming its path", () => {
    const rest: Record<string, unknown> = { ...valid };
    delete rest["stopGraceMs"];
    const err = refusal({ ...rest, daemons: [{ name: "egress", command: [] }] });
    assert.deepEqual(paths(err), ["daemons[0].command", "daemons[0].reload", "stopGraceMs"]);
    assert.match(err.message, /daemons\[0\]\.command must have at least one entry/);
    assert.match(err.message, /stopGraceMs is missing/);
  });

  test("accepts a daemon's probe: a loopback port and a path", () => {
    const probed: InitConfig = {
      ...valid,
      daemons: [
        {
          name: "supervise",
          command: ["node", "/opt/bot-bottle/sidecars/supervise/main.js"],
          port: 9100,
          reload: false,
          probe: { port: 9100, path: "/health" },
        },
      ],
    };
    assert.deepEqual(parseInitConfig(JSON.stringify(probed), FILE), probed);
  });

  test("refuses a probe with no path, a path that is not one, a bad port or an unknown key", () => {
    const daemon = { name: "supervise", command: ["node"], reload: false };
    const err = refusal({
      ...valid,
      daemons: [
        { ...daemon, probe: { port: 9100 } },
        { ...daemon, probe: { port: 9100, path: "health" } },
        { ...daemon, probe: { port: 70000, path: "/health" } },
        { ...daemon, probe: { port: 9100, path: "/health", timeoutMs: 5 } },
      ],
    });
    assert.deepEqual(paths(err), [
      "daemons[0].probe.path",
      "daemons[1].probe.path",
      "daemons[2].probe.port",
      "daemons[3].probe.timeoutMs",
    ]);
    assert.match(err.message, /daemons\[0\]\.probe\.path is missing/);
    assert.match(err.message, /daemons\[1\]\.probe\.path must be a path such as "\/health"/);
    assert.match(err.message, /daemons\[2\]\.probe\.port must be at most 65535/);
    assert.match(err.message, /daemons\[3\]\.probe\.timeoutMs is not a known field/);
  });
});

describe("init's status report, read back by the host", () => {
  test("parses a report naming a daemon that does not answer", () => {
    const report = {
      ready: false,
      daemons: [
        { name: "egress", state: "ready", pid: 12, restarts: 0 },
        {
          name: "supervise",
          state: "ready",
          pid: 13,
          restarts: 0,
          answering: false,
          silentSince: "2025-06-01T12:00:00.000Z",
        },
      ],
    };
    assert.deepEqual(parseInitStatus(JSON.stringify(report), "check"), report);
  });

  test("refuses what is not a report", () => {
    assert.throws(
      () => parseInitStatus("init did not answer GET /health within 3 s", "check"),
      /check is not a valid init status report: \(top level\) is not JSON/,
    );
    assert.throws(
      () => parseInitStatus(JSON.stringify({ ready: "yes", daemons: [] }), "check"),
      /ready must be true or false/,
    );
  });
});

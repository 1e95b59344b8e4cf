import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigFileError } from "../../../src/shared/config-file.js";
import { parseInitConfig, type InitConfig } from "../../../src/shared/init-config.js";

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
});

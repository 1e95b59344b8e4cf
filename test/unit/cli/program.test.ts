import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { run } from "../../../src/cli/program.js";
import { EXAMPLE_FILE } from "../../helpers/manifest.js";
import { capture } from "../../helpers/capture.js";
import { STACK_LINE } from "../../helpers/cli.js";

describe("the command line entry point", () => {
  test("--version prints the package version and exits 0", async () => {
    const c = capture();
    assert.equal(await run(["--version"], c.ctx), 0);
    assert.match(c.out(), /^\d+\.\d+\.\d+\n$/);
  });

  test("an unknown command is a usage error: exit 2, a hint, no stack", async () => {
    const c = capture();
    assert.equal(await run(["frobnicate"], c.ctx), 2);
    assert.match(c.err(), /unknown command/);
    assert.match(c.err(), /hint: `bot-bottle --help`/);
    assert.doesNotMatch(c.err(), STACK_LINE);
  });

  test("a missing manifest exits 2 and says how to make one", async () => {
    const c = capture({}, "/tmp");
    assert.equal(await run(["validate", "-f", "/nonexistent/bot-bottle.json"], c.ctx), 2);
    assert.match(c.err(), /no manifest at \/nonexistent\/bot-bottle.json/);
    assert.match(c.err(), /bot-bottle init/);
  });

  test("BOT_BOTTLE_MANIFEST chooses the file, and -f overrides it", async () => {
    const viaEnv = capture({ BOT_BOTTLE_MANIFEST: EXAMPLE_FILE });
    assert.equal(await run(["validate"], viaEnv.ctx), 0);
    assert.match(viaEnv.out(), /is valid: 2 agents/);
    const overridden = capture({ BOT_BOTTLE_MANIFEST: EXAMPLE_FILE });
    assert.equal(await run(["validate", "-f", "/nonexistent.json"], overridden.ctx), 2);
  });

  test("an unexpected failure exits 1 with a short message; --debug adds the stack", async () => {
    const plain = capture({}, "/tmp", true);
    assert.equal(await run(["schema"], plain.ctx), 1);
    assert.match(plain.err(), /internal error/);
    assert.doesNotMatch(plain.err(), STACK_LINE);
    const debug = capture({}, "/tmp", true);
    assert.equal(await run(["schema", "--debug"], debug.ctx), 1);
    assert.match(debug.err(), STACK_LINE);
  });
});

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { returnLogin } from "../../../src/lifecycle/login.js";
import { CLAUDE_ACCESS_ENV, CLAUDE_REFRESH_ENV } from "../../../src/providers/claude-login.js";

const OLD = { access: `sk-ant-oat01-${"a".repeat(60)}`, refresh: `sk-ant-ort01-${"b".repeat(60)}` };
const NEW = { access: `sk-ant-oat01-${"c".repeat(60)}`, refresh: `sk-ant-ort01-${"d".repeat(60)}` };

/** A stopped bottle's state dir whose bundle refreshed a forwarded Claude login, and the login. */
async function bottle() {
  const dir = await mkdtemp(join(tmpdir(), "bb-login-"));
  const stateDir = join(dir, "state");
  const loginFile = join(dir, ".credentials.json");
  await mkdir(join(stateDir, "audit"), { recursive: true });
  await writeFile(
    loginFile,
    JSON.stringify({
      claudeAiOauth: {
        accessToken: OLD.access,
        refreshToken: OLD.refresh,
        expiresAt: 1,
        scopes: ["s"],
      },
    }),
    { mode: 0o600 },
  );
  await writeFile(
    join(stateDir, "metadata.json"),
    JSON.stringify({
      slug: "coder-abc123",
      template: "claude",
      login: {
        path: loginFile,
        refreshSha256: createHash("sha256").update(OLD.refresh).digest("hex"),
      },
    }),
  );
  await writeFile(
    join(stateDir, "audit", "tokens.json"),
    JSON.stringify({
      time: "2026-11-25T12:00:00.000Z",
      values: { [CLAUDE_ACCESS_ENV]: NEW.access, [CLAUDE_REFRESH_ENV]: NEW.refresh },
      expiresIn: 3600,
    }),
  );
  return { stateDir, loginFile };
}

describe("handing a refreshed login back at stop", () => {
  test("the operator's file gets the refreshed tokens, keeps its mode and other fields; the state dir keeps no token", async () => {
    const { stateDir, loginFile } = await bottle();
    const said = await returnLogin(stateDir, {});
    assert.match(said ?? "", /refreshed in coder-abc123: the new tokens are written back to /);
    const host = JSON.parse(await readFile(loginFile, "utf8")) as {
      claudeAiOauth: Record<string, unknown>;
    };
    assert.deepEqual(host.claudeAiOauth, {
      accessToken: NEW.access,
      refreshToken: NEW.refresh,
      expiresAt: Date.parse("2026-11-25T13:00:00.000Z"),
      scopes: ["s"],
    });
    assert.equal((await stat(loginFile)).mode & 0o777, 0o600);
    await assert.rejects(stat(join(stateDir, "audit", "tokens.json")));
    assert.equal(await returnLogin(stateDir, {}), undefined, "nothing left to do");
  });

  test("a login refreshed on the host meanwhile is left as it is; the tokens still leave the state dir", async () => {
    const { stateDir, loginFile } = await bottle();
    const mine = JSON.stringify({
      claudeAiOauth: {
        accessToken: OLD.access,
        refreshToken: `sk-ant-ort01-${"e".repeat(60)}`,
        expiresAt: 2,
      },
    });
    await writeFile(loginFile, mine);
    assert.match(
      (await returnLogin(stateDir, {})) ?? "",
      /changed on this machine since: left as it is/,
    );
    assert.equal(await readFile(loginFile, "utf8"), mine);
    await assert.rejects(stat(join(stateDir, "audit", "tokens.json")));
  });
});

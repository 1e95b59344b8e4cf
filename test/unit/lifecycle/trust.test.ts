import assert from "node:assert/strict";
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { RefusedError } from "../../../src/errors.js";
import type { BottlePlan } from "../../../src/backends/plan.js";
import {
  contextExposures,
  findExposures,
  refuseExposures,
  traversal,
  type Workspace,
} from "../../../src/lifecycle/trust.js";

describe("files the operator trusts, against the folders agents can write", () => {
  let root = "";
  let ws = "";
  const workspaces = () => [{ path: ws, owner: "this bottle" }];
  const exposed = async (path: string) =>
    (await findExposures([{ what: "the manifest", path }], workspaces()))[0]?.why;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "bot-bottle-trust-"));
    ws = join(root, "project");
    await mkdir(join(ws, "certs"), { recursive: true });
    await mkdir(join(root, "outside"));
    await writeFile(join(root, "bot-bottle.json"), "{}");
    await writeFile(join(root, "outside", "ca.pem"), "pem");
    await writeFile(join(ws, "bot-bottle.json"), "{}");
    await writeFile(join(ws, "certs", "ca.pem"), "pem");
  });
  after(() => rm(root, { recursive: true, force: true }));

  test("a manifest beside the workspace is trusted; one inside it is not", async () => {
    assert.equal(await exposed(join(root, "bot-bottle.json")), undefined);
    assert.match(
      (await exposed(join(ws, "bot-bottle.json"))) ?? "",
      /^lies inside the workspace of this bottle/,
    );
    assert.match((await exposed(join(ws, "certs", "ca.pem"))) ?? "", /^lies inside/);
  });

  test("a file directly in the workspace that its bottle binds read-only is trusted; in a folder it is not", async () => {
    const shielded = [{ path: ws, owner: "this bottle", shields: [join(ws, "bot-bottle.json")] }];
    const why = async (path: string, w: Workspace[] = shielded) =>
      (await findExposures([{ what: "the manifest", path }], w))[0]?.why;
    assert.equal(await why(join(ws, "bot-bottle.json")), undefined);
    assert.match((await why(join(ws, "bot-bottle.json"), workspaces())) ?? "", /^lies inside/);
    const nested = [{ ...shielded[0]!, shields: [join(ws, "certs", "ca.pem")] }];
    assert.match((await why(join(ws, "certs", "ca.pem"), nested)) ?? "", /^lies inside/);
  });

  test("a file the agent could still create in the workspace is refused", async () => {
    assert.match((await exposed(join(ws, "later", "key"))) ?? "", /^lies inside/);
  });

  test("a name that only starts like the workspace is not inside it", async () => {
    await writeFile(join(root, "project-manifest.json"), "{}");
    assert.equal(await exposed(join(root, "project-manifest.json")), undefined);
  });

  test("a path that passes through a symlink in the workspace is refused, even to a file outside", async () => {
    // The agent can point ws/link anywhere: the file read would be the agent's choice.
    await symlink(join(root, "outside"), join(ws, "link"));
    assert.match(
      (await exposed(join(ws, "link", "ca.pem"))) ?? "",
      /^is reached through .*project\/link, inside the workspace/,
    );
  });

  test("a symlink outside that leads into the workspace is refused", async () => {
    await symlink(join(ws, "certs"), join(root, "certs-link"));
    await symlink(ws, join(root, "alias"));
    assert.match((await exposed(join(root, "certs-link", "ca.pem"))) ?? "", /lies inside/);
    assert.match((await exposed(join(root, "alias", "bot-bottle.json"))) ?? "", /lies inside/);
    assert.ok(
      (await traversal(join(root, "alias", "bot-bottle.json"))).includes(
        join(ws, "bot-bottle.json"),
      ),
    );
  });

  test("a file with a second name (a hard link) is refused; its twin with one name is not", async () => {
    await writeFile(join(root, "outside", "key"), "k");
    assert.equal(await exposed(join(root, "outside", "key")), undefined);
    await link(join(root, "outside", "key"), join(ws, "key-copy"));
    assert.match(
      (await exposed(join(root, "outside", "key"))) ?? "",
      /^has 2 names \(hard links\)/,
    );
  });

  test("the refusal names every file and what to do", async () => {
    const exposures = await findExposures(
      [
        { what: "the manifest", path: join(ws, "bot-bottle.json") },
        { what: "bottles.dev.egress.trust_ca", path: join(ws, "certs", "ca.pem") },
        { what: "bottles.dev.git[0].key.path", path: join(root, "outside", "ca.pem") },
      ],
      workspaces(),
    );
    assert.equal(exposures.length, 2);
    assert.throws(
      () => refuseExposures(exposures),
      (err: unknown) =>
        err instanceof RefusedError &&
        err.message.includes(`the manifest ${join(ws, "bot-bottle.json")} lies inside`) &&
        err.message.includes("bottles.dev.egress.trust_ca") &&
        /move them out .* -f PATH .* --cwd a subfolder/.test(err.hint ?? ""),
    );
    assert.doesNotThrow(() => refuseExposures([]));
  });

  test("a Dockerfile layer whose folder holds a workspace is refused: docker build would get the agent's files", async () => {
    const planWith = (dockerfile: string) =>
      ({
        agentContainer: {
          build: {
            template: "claude",
            layers: [{ what: "agents.coder.dockerfile", dockerfile }],
            ref: "x",
          },
        },
      }) as unknown as BottlePlan;
    await mkdir(join(root, "images"), { recursive: true });
    assert.deepEqual(
      await contextExposures(planWith(join(root, "images", "Dockerfile")), workspaces()),
      [],
      "a folder of its own beside the workspace is fine",
    );
    const [e] = await contextExposures(planWith(join(root, "Dockerfile")), workspaces());
    assert.match(e?.file.what ?? "", /build folder of agents.coder.dockerfile/);
    assert.match(e?.why ?? "", /holds this bottle's workspace/);
    const [inside] = await contextExposures(planWith(join(ws, "Dockerfile")), workspaces());
    assert.ok(inside, "the workspace itself as the build folder");
  });
});

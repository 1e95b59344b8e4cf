import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runCli } from "../../helpers/cli.js";
import { runInImage } from "../../helpers/docker.js";

describe("the shell template image", () => {
  test(
    "builds FROM the offline base and runs as user node with git, curl and node",
    { timeout: 20 * 60_000 },
    async () => {
      const base = await runCli(["images", "base", "--json"], { timeoutMs: 20 * 60_000 });
      assert.equal(base.code, 0, base.stderr);

      const built = await runCli(["images", "build", "shell", "--json"], {
        timeoutMs: 20 * 60_000,
      });
      assert.equal(built.code, 0, built.stderr);
      const [result] = JSON.parse(built.stdout) as { ref: string; baseImage: string }[];
      assert.equal(result?.ref, "bot-bottle/shell:latest");
      assert.equal(
        result?.baseImage,
        "bot-bottle/base:trixie",
        "no registry pull: the offline base is used",
      );

      const lines = await runInImage(
        result.ref,
        'id -un; id -u; echo "$HOME"; git --version; curl --version | head -n 1; node -e "console.log(process.versions.node)"',
      );
      const [user, uid, home, git, curl, node] = lines;
      assert.equal(user, "node");
      assert.equal(uid, "1000");
      assert.equal(home, "/home/node");
      assert.match(git ?? "", /^git version \d/);
      assert.match(curl ?? "", /^curl \d/);
      assert.match(node ?? "", /^\d+\.\d+\.\d+$/);

      const again = await runCli(["images", "build", "shell", "--json"]);
      assert.equal((JSON.parse(again.stdout) as { reused: boolean }[])[0]?.reused, true);
    },
  );
});

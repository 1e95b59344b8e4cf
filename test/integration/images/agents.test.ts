import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import { runCli } from "../../helpers/cli.js";
import { runInImage } from "../../helpers/docker.js";

interface Result {
  name: string;
  ref: string;
  id: string;
  baseImage: string;
  reused: boolean;
  seconds: number;
  size: number;
  agentPackage?: string;
}

const PINS = {
  claude: {
    spec: "@anthropic-ai/claude-code@2.1.332",
    version: "claude --version",
    says: /^2\.1\.332 \(Claude Code\)$/,
  },
  codex: {
    spec: "@openai/codex@0.169.0",
    version: "codex --version",
    says: /^codex-cli 0\.169\.0$/,
  },
} as const;

/** The certificates of a PEM bundle, each as its base64 body on one line. */
function certificates(pem: string): Set<string> {
  const found = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return new Set(found.map((c) => c.replace(/-----[A-Z ]+-----|\s/g, "")));
}

async function label(ref: string, name: string): Promise<string | undefined> {
  const { stdout } = await run("docker", [
    "image",
    "inspect",
    "--format",
    "{{json .Config.Labels}}",
    ref,
  ]);
  return (JSON.parse(stdout) as Record<string, string>)[name];
}

describe("the claude and codex template images", () => {
  test(
    "build FROM shell with each CLI at its pinned version, run as node, keep the host's CAs out of the image, and are reused when unchanged",
    { timeout: 20 * 60_000 },
    async () => {
      const base = await runCli(["images", "base", "--json"], { timeoutMs: 20 * 60_000 });
      assert.equal(base.code, 0, base.stderr);

      const built = await runCli(["images", "build", "claude", "codex", "--json"], {
        timeoutMs: 20 * 60_000,
      });
      assert.equal(built.code, 0, built.stderr);
      const results = JSON.parse(built.stdout) as Result[];
      assert.deepEqual(
        results.map((r) => r.name),
        ["shell", "claude", "codex"],
        "shell is ensured first",
      );
      const shell = results[0]!;
      for (const r of results.slice(1)) {
        if (!r.reused) console.log(`# built ${r.ref} in ${r.seconds.toFixed(1)} s`);
        console.log(`# ${r.ref}: ${(r.size / 1e6).toFixed(0)} MB`);
        assert.equal(r.baseImage, shell.ref, `${r.name} is built FROM the shell image`);
        assert.equal(r.agentPackage, PINS[r.name as keyof typeof PINS].spec);
        assert.ok(r.size > shell.size, `${r.name} is shell plus its CLI`);
      }

      const hostBundle = await readFile("/etc/ssl/certs/ca-certificates.crt", "utf8").catch(
        () => "",
      );
      const extraFile = process.env["NODE_EXTRA_CA_CERTS"];
      const hostExtra = extraFile ? await readFile(extraFile, "utf8").catch(() => "") : "";
      const shellBundle = (
        await runInImage(shell.ref, "cat /etc/ssl/certs/ca-certificates.crt")
      ).join("\n");
      const shipped = certificates(shellBundle);
      const hostOnly = [...certificates(hostBundle + hostExtra)].filter((c) => !shipped.has(c));
      console.log(`# the host trusts ${hostOnly.length} CA(s) Debian does not ship`);

      for (const name of ["claude", "codex"] as const) {
        const ref = `bot-bottle/${name}:latest`;
        const pin = PINS[name];
        const [user, home, says, stray] = await runInImage(
          ref,
          `id -un; echo "$HOME"; ${pin.version} 2>/dev/null | tail -n 1; find "$HOME" /tmp -mindepth 1 ! -user node -print | head -n 3; echo end`,
        );
        assert.equal(user, "node");
        assert.equal(home, "/home/node");
        assert.match(says ?? "", pin.says, `${name} runs as node`);
        assert.equal(stray, "end", "nothing under the home or /tmp belongs to another user");
        assert.equal(await label(ref, "dev.bot-bottle.agent-version"), pin.spec);

        const bundle = (await runInImage(ref, "cat /etc/ssl/certs/ca-certificates.crt")).join("\n");
        assert.equal(bundle, shellBundle, `${name}'s trust store is the one Debian ships`);
        const inImage = certificates(bundle);
        assert.deepEqual(
          hostOnly.filter((c) => inImage.has(c)),
          [],
          "no CA of the host's enters the image's trust store",
        );
        const [leftover] = await runInImage(
          ref,
          "ls /tmp/build-ca.pem /root/.npm /tmp/npm-cache 2>/dev/null | wc -l",
        );
        assert.equal(leftover, "0", "the build's CA file and npm's cache are gone");
      }

      const again = await runCli(["images", "build", "claude", "codex", "--json"], {
        timeoutMs: 5 * 60_000,
      });
      assert.equal(again.code, 0, again.stderr);
      const second = JSON.parse(again.stdout) as Result[];
      assert.deepEqual(
        second.map((r) => [r.name, r.reused]),
        [
          ["shell", true],
          ["claude", true],
          ["codex", true],
        ],
      );
      assert.deepEqual(
        second.map((r) => r.id),
        results.map((r) => r.id),
      );

      const ls = await runCli(["images", "ls", "--json"]);
      assert.equal(ls.code, 0, ls.stderr);
      const listed = JSON.parse(ls.stdout) as {
        name: string;
        present: boolean;
        size?: number;
        built?: string;
        pinned?: string;
      }[];
      for (const name of ["claude", "codex"] as const) {
        const l = listed.find((x) => x.name === name);
        assert.equal(l?.present, true);
        assert.equal(l.built, PINS[name].spec);
        assert.equal(l.pinned, PINS[name].spec);
        assert.ok((l.size ?? 0) > 0);
      }
      const doctor = await runCli(["doctor"]);
      assert.match(
        doctor.stdout,
        /^ok\s+image claude\s+bot-bottle\/claude:latest present, [\d.]+[MG]B, @anthropic-ai\/claude-code@2\.1\.332/m,
      );
      assert.match(
        doctor.stdout,
        /^ok\s+image codex\s+bot-bottle\/codex:latest present, [\d.]+[MG]B, @openai\/codex@0\.169\.0/m,
      );
    },
  );
});

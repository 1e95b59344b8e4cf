import { randomBytes } from "node:crypto";
import { run } from "../../src/exec/run.js";

/** Runs a shell script in a throw-away, labelled, network-less container; returns its output lines. */
export async function runInImage(ref: string, script: string): Promise<string[]> {
  const name = `bot-bottle-test-${randomBytes(4).toString("hex")}`;
  const { stdout } = await run("docker", [
    "run",
    "--rm",
    "--name",
    name,
    "--label",
    "dev.bot-bottle.test=1",
    "--network",
    "none",
    ref,
    "sh",
    "-c",
    script,
  ]);
  return stdout.trim().split("\n");
}

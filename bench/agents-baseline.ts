/**
 * bench/agents' baseline: the agent's CLI from its bot-bottle image in a plain `docker run --rm`
 * on the fake model API's network, configured as a bottle configures it (Codex's provider and
 * features, Claude Code's traffic switches) but with no bundle, no proxy and no cage.
 */
import type { FakeModel } from "../test/helpers/fake-model.js";
import { codex } from "../src/providers/codex.js";

/** The prompt both the bottled and the baseline runs give; the fake answers "ready". */
export const PROMPT = "SAY: ready";

/** Where the baseline's home is, inside its container; its workspace is a folder of it. */
export const BASE_HOME = "/tmp/home";

/** An agent the bench measures: its template, manifest name, image and model API host. */
export interface Agent {
  template: "claude" | "codex";
  /** The manifest's agent name, unique to this run. */
  name: string;
  image: string;
  host: string;
}

/** Codex's configuration for the baseline: the very file a bottle's codex template writes. */
export function codexConfig(workspace: string): string {
  const file = codex
    .files({ home: BASE_HOME, workspace })
    .find((f) => f.path === `${BASE_HOME}/.codex/config.toml`);
  if (!file) throw new Error("the codex template writes no config.toml");
  return file.content;
}

/**
 * The baseline: the agent's CLI from its image in a plain container on the fake's network, as
 * node, with a fresh home, the fake's name mapped to its address and its CA trusted. The keys go
 * by name only (`-e NAME`), their values from this process's environment.
 */
export function baselineArgs(a: Agent, network: string, fake: FakeModel, bench: string): string[] {
  const ws = `${BASE_HOME}/workspace`;
  const common = [
    "run",
    "--rm",
    "--network",
    network,
    "--add-host",
    `${a.host}:${fake.ip}`,
    "--user",
    "node",
    "--volume",
    `${bench}:/bench:ro`,
    "--env",
    `HOME=${BASE_HOME}`,
  ];
  if (a.template === "claude")
    return [
      ...common,
      ...["--env", "NODE_EXTRA_CA_CERTS=/bench/ca.crt"],
      ...["--env", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "--env", "DISABLE_AUTOUPDATER=1"],
      ...["--env", "ANTHROPIC_API_KEY"],
      a.image,
      "sh",
      "-c",
      `mkdir -p ${ws} && cd ${ws} && exec "$@"`,
      "sh",
      ...["claude", "--dangerously-skip-permissions", "-p", PROMPT],
    ];
  return [
    ...common,
    ...["--env", `CODEX_HOME=${BASE_HOME}/.codex`, "--env", "CODEX_CA_CERTIFICATE=/bench/ca.crt"],
    ...["--env", "OPENAI_API_KEY"],
    a.image,
    "sh",
    "-c",
    `mkdir -p "$CODEX_HOME" ${ws} && cp /bench/config.toml "$CODEX_HOME/" && cd ${ws} && exec "$@"`,
    "sh",
    "codex",
    "exec",
    ...["--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "-m", "gpt-fake"],
    PROMPT,
  ];
}

/**
 * AgentProvider: what a template puts in a bottle. The shell, claude and codex templates and
 * user plugins (plugins.ts) each answer the same questions: which image, which commands start the
 * agent interactively and headless, which routes and variables it needs, and which files its home
 * holds before the operator hands over. Pure: no file is read and nothing runs here (a plugin's
 * files are read when it is loaded).
 */
import type { Route } from "../manifest/schema.js";

/** What a provider knows about the agent it starts in one bottle. */
export interface AgentSession {
  /** The agent user's home and the workspace, as the agent sees them. */
  home: string;
  workspace: string;
  /** The manifest's `model`, when it names one. */
  model?: string;
  /** The manifest's `prompt`, when it sets one. */
  prompt?: string;
}

/** A file written in the agent's home, as the agent's user, before the agent starts. */
export interface AgentFile {
  /** Absolute path in the bottle. */
  path: string;
  content: string;
  /** Octal permission bits, e.g. 0o600. */
  mode: number;
  /** What it is, for messages: "the codex configuration". */
  what: string;
}

export interface AgentProvider {
  /** The template name a manifest uses. */
  readonly name: string;
  /** One line for `bot-bottle templates`. */
  readonly summary: string;
  /** The image under images/ its bottles start from. */
  readonly image: string;
  /** Where its skills go, below the agent's home ("" when it has no notion of skills). */
  readonly skillsDir: string;
  /** Routes added to the bottle's own (a bottle route for the same host and port replaces one). */
  routes(): Route[];
  /**
   * The variable its CLI reads its API key from, and the host that key is for: the agent holds,
   * under that name, the placeholder of whichever token the bottle's route for the host injects.
   */
  readonly apiKey?: { env: string; host: string };
  /** Variables set in the agent (never a secret: tokens are placeholders set by launch). */
  env(session: AgentSession): Record<string, string>;
  /** The agent's interactive UI, run in its session in the bottle. */
  interactive(session: AgentSession): string[];
  /** One headless task: the prompt is appended as the last argument. */
  headless(session: AgentSession): string[];
  /** Files its home holds before the agent starts: configuration, the prompt. */
  files(session: AgentSession): AgentFile[];
  /**
   * Dockerfiles layered on `image`, in order, before the manifest's own (a plugin's Dockerfile):
   * each starts `ARG BASE_IMAGE` then `FROM ${BASE_IMAGE}`, and its folder is the build context.
   */
  readonly layers?: readonly { what: string; dockerfile: string }[];
  /**
   * Host files and folders the provider was read from (a plugin's folder, its plugin.json, its
   * Dockerfile and files): the operator's side trusts them, so no bottle may be able to write them.
   */
  readonly trusted?: readonly { what: string; path: string }[];
}

/** Where the agent's prompt is written when its CLI reads it from a file of bot-bottle's. */
export function promptPath(home: string): string {
  return `${home}/.bot-bottle/prompt.md`;
}

/**
 * AgentProvider: what a template puts in a bottle. The shell, claude and codex templates and
 * user plugins (plugins.ts) each answer the same questions: which image, which commands start the
 * agent interactively and headless, which routes and variables it needs, and which files its home
 * holds before the operator hands over. Pure: no file is read and nothing runs here (a plugin's
 * files are read when it is loaded).
 */
import type { Route } from "../manifest/schema.js";
import type { TokenExchange } from "../shared/egress-config.js";

/**
 * A route a template adds: the manifest's shape, and for a forwarded login's token endpoint the
 * exchange the proxy performs there (never written in a manifest).
 */
export type ProviderRoute = Route & { exchange?: TokenExchange };

/** What a provider knows about the agent it starts in one bottle. */
export interface AgentSession {
  /** The agent user's home and the workspace, as the agent sees them. */
  home: string;
  workspace: string;
  /** The manifest's `model`, when it names one. */
  model?: string;
  /** The manifest's `prompt`, when it sets one. */
  prompt?: string;
  /** The operator's own login is forwarded (`forward_host_credentials`). */
  forwardedLogin?: boolean;
  /** MCP servers of the bundle the agent is registered with, by name: their URLs. */
  mcpServers?: Record<string, string>;
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

/** An unusable host login: what is wrong, for the start's error. */
export class LoginProblem extends Error {}

/** What a forwarded host login gives the bottle. */
export interface ForwardedLogin {
  /** The login's tokens, by the bundle variable that holds each. */
  secrets: Record<string, string>;
  /** The agent's login file: the host's shape, with placeholderRef tokens for the tokens. */
  file: AgentFile;
}

/**
 * The operator's own login to the model provider, forwarded (`forward_host_credentials`): the
 * bundle holds its tokens and refreshes them through the proxy; the agent holds a login file of
 * the same shape with placeholders.
 */
export interface HostLogin {
  /** For messages: "your Claude Code login". */
  readonly what: string;
  /** Where it lives on the host. */
  path(env: NodeJS.ProcessEnv, home: string): string;
  /** How the operator logs in (again) on the host. */
  readonly loginHint: string;
  /** Routes used instead of the template's own: the API with the login's token, its refresh. */
  routes(): ProviderRoute[];
  /** The bundle variables that hold the login's tokens. */
  readonly secretEnv: readonly string[];
  /** Those holding JSON Web Tokens whose claims the CLI reads (their placeholders keep them). */
  readonly jwtEnv?: readonly string[];
  /** Reads the login file's text; throws LoginProblem when it cannot be used (e.g. expired). */
  forward(text: string, now: Date, session: AgentSession): ForwardedLogin;
  /** The refresh token in the login file's text (to tell whether the host refreshed it since). */
  refreshToken(text: string): string | undefined;
  /**
   * The login file's text with the tokens the bottle's refreshes left (by bundle variable), the
   * time of the last refresh and its `expires_in`: what `stop` writes back, since the refresh
   * used up the file's refresh token.
   */
  writeBack(
    text: string,
    tokens: Readonly<Record<string, string>>,
    time: Date,
    expiresIn?: number,
  ): string;
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
  routes(): ProviderRoute[];
  /**
   * The variable its CLI reads its API key from, and the host that key is for: the agent holds,
   * under that name, the placeholder of whichever token the bottle's route for the host injects.
   */
  readonly apiKey?: { env: string; host: string };
  /** The operator's login that `forward_host_credentials` forwards, when the CLI has one. */
  readonly hostLogin?: HostLogin;
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

/**
 * The images bot-bottle builds. Each Dockerfile under images/ takes ARG BASE_IMAGE, which defaults
 * to a public Debian image; where no registry can be reached, `bot-bottle images base` builds an
 * equivalent base from Debian's packages and later builds use it. An image built `from` another
 * of the catalog (the agent templates on shell) gets that image as BASE_IMAGE instead.
 */

/** The public image the Dockerfiles name by default, and the suite the offline base mirrors. */
export const PUBLIC_BASE_IMAGE = "debian:trixie-slim";
export const DEFAULT_SUITE = "trixie";

export function baseImageRef(suite: string): string {
  return `bot-bottle/base:${suite}`;
}

/** An agent CLI a template installs with npm, pinned: the build installs exactly this. */
export interface AgentPackage {
  name: string;
  version: string;
  /** The command it puts on PATH. */
  command: "claude" | "codex";
}

/** The image label holding the package a template was built with (`name@version`). */
export const AGENT_VERSION_LABEL = "dev.bot-bottle.agent-version";

export function agentPackageSpec(p: AgentPackage): string {
  return `${p.name}@${p.version}`;
}

export interface ImageEntry {
  /** Short name used on the command line. */
  name: string;
  ref: string;
  purpose: string;
  /** How to get it when it is missing. */
  remedy: string;
  /** The folder under images/ holding its Dockerfile; none for the imported base. */
  dockerfileDir?: string;
  /** The build context also carries the compiled sidecar code (the bundle). */
  withSidecars?: boolean;
  /** An agent template: the image a bottle's agent cascade starts from. */
  template?: boolean;
  /** The catalog image it is built FROM (passed as BASE_IMAGE, built first when needed). */
  from?: string;
  /** The agent CLI it installs (its build runs npm with the host's CAs and registry). */
  agentPackage?: AgentPackage;
  /** It need not exist before a start: start builds it (doctor reports it missing as info). */
  builtOnStart?: boolean;
}

export function imageCatalog(): ImageEntry[] {
  return [
    {
      name: "base",
      ref: baseImageRef(DEFAULT_SUITE),
      purpose: "offline Debian base for every other image",
      remedy:
        "run `bot-bottle images base` (builds it from Debian packages; needs root and debootstrap)",
    },
    {
      name: "shell",
      ref: "bot-bottle/shell:latest",
      purpose: 'the "shell" agent template: Debian with git, curl, node, tmux and user node',
      remedy: "run `bot-bottle images build shell`",
      dockerfileDir: "shell",
      template: true,
    },
    {
      name: "claude",
      ref: "bot-bottle/claude:latest",
      purpose: 'the "claude" agent template: shell with Claude Code',
      remedy: "run `bot-bottle images build claude` (start builds it when missing)",
      dockerfileDir: "agent-cli",
      template: true,
      from: "shell",
      builtOnStart: true,
      agentPackage: { name: "@anthropic-ai/claude-code", version: "2.1.332", command: "claude" },
    },
    {
      name: "codex",
      ref: "bot-bottle/codex:latest",
      purpose: 'the "codex" agent template: shell with Codex',
      remedy: "run `bot-bottle images build codex` (start builds it when missing)",
      dockerfileDir: "agent-cli",
      template: true,
      from: "shell",
      builtOnStart: true,
      agentPackage: { name: "@openai/codex", version: "0.169.0", command: "codex" },
    },
    {
      name: "bundle",
      ref: "bot-bottle/bundle:latest",
      purpose: "the sidecar bundle: init and the egress daemon",
      remedy: "run `bot-bottle images build bundle` (start builds it when missing)",
      dockerfileDir: "bundle",
      withSidecars: true,
    },
  ];
}

/**
 * The images bot-bottle builds. Each Dockerfile under images/ takes ARG BASE_IMAGE, which defaults
 * to a public Debian image; where no registry can be reached, `bot-bottle images base` builds an
 * equivalent base from Debian's packages and later builds use it.
 */

/** The public image the Dockerfiles name by default, and the suite the offline base mirrors. */
export const PUBLIC_BASE_IMAGE = "debian:trixie-slim";
export const DEFAULT_SUITE = "trixie";

export function baseImageRef(suite: string): string {
  return `bot-bottle/base:${suite}`;
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
      purpose: 'the "shell" agent template: Debian with git, curl, node and user node',
      remedy: "run `bot-bottle images build shell`",
      dockerfileDir: "shell",
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

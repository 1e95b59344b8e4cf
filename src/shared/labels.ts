/**
 * Labels on everything bot-bottle creates, so `ls` and `cleanup` find it, and names stay unique
 * per bottle. Shared by host code and tests.
 */
export const LABEL_PREFIX = "dev.bot-bottle";
export const LABEL_SCHEMA_VERSION = "1";

export const LABELS = {
  schema: `${LABEL_PREFIX}.schema`,
  slug: `${LABEL_PREFIX}.slug`,
  agent: `${LABEL_PREFIX}.agent`,
  bottle: `${LABEL_PREFIX}.bottle`,
  role: `${LABEL_PREFIX}.role`,
  stateDir: `${LABEL_PREFIX}.state-dir`,
  /** The backend that runs the bottle ("docker" when absent). */
  backend: `${LABEL_PREFIX}.backend`,
  /** A VM agent only: how its flows reach the bundle ("gateway" or "interceptor"). */
  route: `${LABEL_PREFIX}.route`,
  /** The agent only: the folder its commands start in. */
  workdir: `${LABEL_PREFIX}.workdir`,
  /** The bundle's agent-facing ports: "egress=9099,…". */
  ports: `${LABEL_PREFIX}.ports`,
} as const;

export type Role = "agent" | "bundle" | "internal-network" | "egress-network";

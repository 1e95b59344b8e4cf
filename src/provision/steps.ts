/**
 * A root step: a shell script start runs as root in the agent, in the same `exec` as the cage
 * self-test (one exec instead of two). Values reach it through its environment, never its text.
 */
export interface RootStep {
  /** What it does, for messages: "installing the bottle CA". */
  what: string;
  script: string;
  env: Record<string, string>;
}

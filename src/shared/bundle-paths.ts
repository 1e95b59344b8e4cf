/**
 * Where things are inside the bundle, with no schema attached: the git gate's hooks start once per
 * fetch or push, and import these without loading the schemas (zod) they do not need.
 */
export const AUDIT_DIR = "/var/log/bot-bottle";
export const GIT_GATE_CONFIG_PATH = "/etc/bot-bottle/git-gate.json";
export const GIT_GATE_PORT = 9418;
/** Where the mirrors live in the bundle: the state dir's `git/`, writable by the bundle alone. */
export const GIT_GATE_ROOT = "/var/lib/bot-bottle/git";
export const GIT_AUDIT_FILE = "git.jsonl";

/**
 * Where things are inside the bundle, with no schema attached: constants the host and the
 * sidecars both use, importable without the schemas (zod).
 */
export const AUDIT_DIR = "/var/log/bot-bottle";
export const GIT_GATE_CONFIG_PATH = "/etc/bot-bottle/git-gate.json";
export const GIT_GATE_PORT = 9418;
/** Where the mirrors live in the bundle: the state dir's `git/`, writable by the bundle alone. */
export const GIT_GATE_ROOT = "/var/lib/bot-bottle/git";
export const GIT_AUDIT_FILE = "git.jsonl";

/** The git gate's private home in the bundle (its tmpfs): config, keys, control sockets. */
export const GIT_GATE_HOME = "/tmp/git-gate";

/**
 * Where the host hands the gate a credential an operator gave when approving a repository live
 * (`bot-bottle approve --key-file/--token-env`): written through the engine, never a host file.
 */
export function gitGrantPath(name: string, kind: "key" | "token", home = GIT_GATE_HOME): string {
  return `${home}/grants/${name}.${kind}`;
}

/**
 * The egress daemon, as init starts it inside the bundle: reads the routes the host wrote, the
 * bottle CA (certificate from the config folder, key from the environment), listens for the
 * agent, appends one audit line per decision, and reloads its routes on SIGHUP — keeping the old
 * ones when the new file is unreadable, so a bad edit never opens or closes anything by accident.
 * When the config names agentKeyEnv, the agent's proxy key is read from that variable at start
 * (none there: it refuses to start) and stays in force across every reload. A forwarded login's
 * refreshed tokens are kept beside the audit log, and a restarted daemon starts from them.
 */
import {
  createWriteStream,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { ConfigFileError } from "../../shared/config-file.js";
import {
  AUDIT_DIR,
  AUDIT_FILE,
  CA_CERT_PATH,
  CA_KEY_ENV,
  EGRESS_CONFIG_PATH,
  parseEgressConfig,
  parseRotatedTokens,
  ROTATED_TOKENS_FILE,
  type AuditRecord,
  type EgressConfig,
  type RotatedTokens,
} from "../../shared/egress-config.js";
import { createLogger } from "../log.js";
import { CertificateAuthority } from "./certs.js";
import { EgressProxy } from "./proxy.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return (i >= 0 ? process.argv[i + 1] : undefined) ?? fallback;
}

const port = Number(arg("port", "9099"));
const configPath = arg("config", EGRESS_CONFIG_PATH);
const auditDir = arg("audit-dir", AUDIT_DIR);

/** The routes file, parsed (throws on an unreadable or invalid one), and the CAs it names. */
function readConfig(): { config: EgressConfig; trustCa: string | undefined } {
  const config = parseEgressConfig(readFileSync(configPath, "utf8"), configPath);
  const trustCa = config.trustCaFile ? readFileSync(config.trustCaFile, "utf8") : undefined;
  return { config, trustCa };
}

/**
 * The agent's proxy key, when the config asks for one: read once, here, and kept for the daemon's
 * life (a reload never changes it). Asked for but unset or empty is an invalid config.
 */
function readAgentKey(config: EgressConfig): string | undefined {
  const name = config.agentKeyEnv;
  if (name === undefined) return undefined;
  const key = process.env[name];
  if (!key)
    throw new ConfigFileError(configPath, "egress config", [
      {
        path: "agentKeyEnv",
        message: `names ${name}, which is unset or empty in the bundle (the proxy never runs without the agent's key)`,
      },
    ]);
  return key;
}

/**
 * At start there are no previous routes to keep: a bad file, or a key it asks for and the bundle
 * lacks, ends the process, refusing all.
 */
function readInitialConfig(): ReturnType<typeof readConfig> & { agentKey: string | undefined } {
  try {
    const read = readConfig();
    return { ...read, agentKey: readAgentKey(read.config) };
  } catch (err) {
    // Written synchronously: the process exits on the next line.
    const slug = process.env["BOT_BOTTLE_SLUG"] ?? "unknown";
    createLogger(slug, "egress", (line) => {
      writeSync(1, line);
      return true;
    })(
      "config-invalid",
      `${err instanceof Error ? err.message : String(err)}: refusing to start (every request stays refused)`,
      {
        file: configPath,
        ...(err instanceof ConfigFileError ? { problems: err.problems } : {}),
      },
    );
    process.exit(1);
  }
}

const initial = readInitialConfig();
const log = createLogger(initial.config.slug, "egress");
const caKey = process.env[CA_KEY_ENV];
if (!caKey) {
  log("fatal", `no CA key in ${CA_KEY_ENV}: refusing to start (every request stays refused)`);
  process.exit(1);
}
const ca = new CertificateAuthority(readFileSync(arg("ca-cert", CA_CERT_PATH), "utf8"), caKey);

// The secrets this bundle holds: every route's token that is set, and the CA key itself.
const secrets: Record<string, string> = { [CA_KEY_ENV]: caKey };
for (const name of initial.config.secretEnv) {
  const value = process.env[name];
  if (value) secrets[name] = value;
}
// A forwarded login refreshed before this daemon (re)started: its latest tokens, not the first.
const rotatedFile = join(auditDir, ROTATED_TOKENS_FILE);
const rotatable = new Set(
  initial.config.routes.flatMap((r) =>
    r.exchange ? [r.exchange.refreshEnv, ...Object.values(r.exchange.rotates)] : [],
  ),
);
let rotated: RotatedTokens | undefined;
try {
  rotated = parseRotatedTokens(readFileSync(rotatedFile, "utf8"), rotatedFile);
  for (const [name, value] of Object.entries(rotated.values))
    if (rotatable.has(name)) secrets[name] = value;
} catch {
  rotated = undefined; // none yet (or unreadable: the tokens the bundle started with stand)
}
// Nothing below needs them in the environment any more.
delete process.env[CA_KEY_ENV];
if (initial.config.agentKeyEnv !== undefined) delete process.env[initial.config.agentKeyEnv];

mkdirSync(auditDir, { recursive: true });
const audit = createWriteStream(join(auditDir, AUDIT_FILE), { flags: "a", mode: 0o644 });
const proxy = new EgressProxy({
  config: initial.config,
  ...(initial.trustCa ? { trustCa: initial.trustCa } : {}),
  ca,
  secrets,
  ...(initial.agentKey ? { agentKey: initial.agentKey } : {}),
  log,
  audit: (record: AuditRecord) => audit.write(JSON.stringify(record) + "\n"),
  onLeaseEnd: (closed) =>
    log("lease-ended", `a granted route's lease ended; ${closed} connection(s) it allowed closed`),
  onRotate: (values, expiresIn) => {
    rotated = {
      time: new Date().toISOString(),
      values: { ...rotated?.values, ...values },
      ...(expiresIn !== undefined ? { expiresIn } : {}),
    };
    // Written whole, then renamed over the last: a reader never sees half a file.
    const tmp = `${rotatedFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(rotated) + "\n", { mode: 0o600 });
    renameSync(tmp, rotatedFile);
    log("login-refreshed", `a forwarded login was refreshed: ${Object.keys(values).join(", ")}`, {
      rotated: Object.keys(values),
    });
  },
});

void proxy.listen(port).then(() =>
  log("listen", `egress listening on :${port} with ${initial.config.routes.length} routes`, {
    port,
    routes: initial.config.routes.length,
    generation: initial.config.generation,
  }),
);

process.on("SIGHUP", () => {
  try {
    const next = readConfig();
    proxy.reload(next.config, next.trustCa);
    log("reload", `routes reloaded: ${next.config.routes.length} routes`, {
      routes: next.config.routes.length,
      generation: next.config.generation,
    });
    if (initial.agentKey && next.config.agentKeyEnv !== initial.config.agentKeyEnv)
      log(
        "agent-key-kept",
        `the new config names agentKeyEnv ${next.config.agentKeyEnv ?? "(none)"}; the key read at start from ${initial.config.agentKeyEnv ?? ""} stays required until a restart`,
        { generation: next.config.generation },
      );
  } catch (err) {
    log(
      "reload-failed",
      `kept the previous routes: ${err instanceof Error ? err.message : String(err)}`,
      {
        generation: proxy.config.generation,
      },
    );
  }
});
process.on("SIGTERM", () => {
  void proxy.close().then(() => audit.end(() => process.exit(0)));
});

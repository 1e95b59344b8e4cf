/**
 * The egress daemon, as init starts it inside the bundle: reads the routes the host wrote, the
 * bottle CA (certificate from the config folder, key from the environment), listens for the
 * agent, appends one audit line per decision, and reloads its routes on SIGHUP — keeping the old
 * ones when the new file is unreadable, so a bad edit never opens or closes anything by accident.
 */
import { createWriteStream, mkdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ConfigFileError } from "../../shared/config-file.js";
import {
  AUDIT_DIR,
  AUDIT_FILE,
  CA_CERT_PATH,
  CA_KEY_ENV,
  EGRESS_CONFIG_PATH,
  parseEgressConfig,
  type AuditRecord,
  type EgressConfig,
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

/** At start there are no previous routes to keep: a bad file ends the process, refusing all. */
function readInitialConfig(): ReturnType<typeof readConfig> {
  try {
    return readConfig();
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
// Nothing below needs them in the environment any more.
delete process.env[CA_KEY_ENV];

mkdirSync(auditDir, { recursive: true });
const audit = createWriteStream(join(auditDir, AUDIT_FILE), { flags: "a", mode: 0o644 });
const proxy = new EgressProxy({
  config: initial.config,
  ...(initial.trustCa ? { trustCa: initial.trustCa } : {}),
  ca,
  secrets,
  log,
  audit: (record: AuditRecord) => audit.write(JSON.stringify(record) + "\n"),
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

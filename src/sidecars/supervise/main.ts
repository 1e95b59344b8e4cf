/**
 * The supervise daemon, as init starts it inside the bundle: reads the config the host wrote,
 * serves the MCP server on 0.0.0.0:<port>/mcp, reads decisions from the read-only decisions
 * folder and appends to audit/supervise.jsonl. An unreadable or invalid config ends the process:
 * with no server, the agent can ask for nothing, and nothing is approved.
 */
import { readFileSync, writeSync } from "node:fs";
import { ConfigFileError } from "../../shared/config-file.js";
import { AUDIT_DIR } from "../../shared/egress-config.js";
import {
  DECISIONS_DIR,
  parseSuperviseConfig,
  SUPERVISE_CONFIG_PATH,
  type SuperviseConfig,
} from "../../shared/supervise.js";
import { createLogger } from "../log.js";
import { MCP_PATH, startSupervise } from "./server.js";

const configPath = process.env["BOT_BOTTLE_SUPERVISE_CONFIG"] ?? SUPERVISE_CONFIG_PATH;
const decisionsDir = process.env["BOT_BOTTLE_SUPERVISE_DECISIONS"] ?? DECISIONS_DIR;
const auditDir = process.env["BOT_BOTTLE_AUDIT_DIR"] ?? AUDIT_DIR;

function readConfig(): SuperviseConfig {
  try {
    return parseSuperviseConfig(readFileSync(configPath, "utf8"), configPath);
  } catch (err) {
    // Written synchronously: the process exits on the next line.
    const slug = process.env["BOT_BOTTLE_SLUG"] ?? "unknown";
    createLogger(slug, "supervise", (line) => {
      writeSync(1, line);
      return true;
    })(
      "config-invalid",
      `${err instanceof Error ? err.message : String(err)}: refusing to start (the agent can ask for nothing)`,
      { file: configPath, ...(err instanceof ConfigFileError ? { problems: err.problems } : {}) },
    );
    process.exit(1);
  }
}

const config = readConfig();
const log = createLogger(config.slug, "supervise");

startSupervise({ config, decisionsDir, auditDir, log }).then(
  (server) => {
    log("listen", `supervise listening on :${server.port}${MCP_PATH}`, {
      port: server.port,
      waitSeconds: config.waitSeconds,
      timeoutSeconds: config.timeoutSeconds,
    });
    const stop = () => {
      void server.close().then(() => process.exit(0));
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  },
  (err: unknown) => {
    log("start-failed", err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);

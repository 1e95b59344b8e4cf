/**
 * bot-bottle's init: PID 1 of the sidecar bundle. Reads the plan's init config, supervises the
 * daemons (and probes those that declare a probe), on SIGHUP forwards it and starts the daemons
 * its re-read config adds, stops on SIGTERM within a deadline, and serves GET /health on loopback
 * only (the agent cannot reach it).
 */
import { readFileSync, writeSync } from "node:fs";
import { ConfigFileError } from "../../shared/config-file.js";
import { INIT_CONFIG_PATH, parseInitConfig, type InitConfig } from "../../shared/init-config.js";
import { createLogger } from "../log.js";
import { healthEndpoint } from "./endpoint.js";
import { Supervisor } from "./supervisor.js";

const configPath = process.env["BOT_BOTTLE_INIT_CONFIG"] ?? INIT_CONFIG_PATH;

/** The config in the file; throws ConfigFileError when invalid, an fs error when unreadable. */
function loadConfig(): InitConfig {
  return parseInitConfig(readFileSync(configPath, "utf8"), configPath);
}

/** What a failed loadConfig() says: a sentence naming the file, and the fields of its event. */
function failure(err: unknown): { reason: string; fields: Record<string, unknown> } {
  return {
    reason: err instanceof Error ? err.message : String(err),
    fields: {
      file: configPath,
      ...(err instanceof ConfigFileError ? { problems: err.problems } : {}),
    },
  };
}

/** The config, or the process ends with a `config-invalid` event: nothing starts on a bad file. */
function readConfig(): InitConfig {
  try {
    return loadConfig();
  } catch (err) {
    // Written synchronously: the process exits on the next line.
    const slug = process.env["BOT_BOTTLE_SLUG"] ?? "unknown";
    const { reason, fields } = failure(err);
    createLogger(slug, "init", (line) => {
      writeSync(1, line);
      return true;
    })("config-invalid", `${reason}: starting nothing`, fields);
    process.exit(1);
  }
}

const config = readConfig();
const log = createLogger(config.slug, "init");
const supervisor = new Supervisor(config, log);

const health = healthEndpoint(() => supervisor.status());
health.listen(config.healthPort, "127.0.0.1");

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log("signal", `received ${signal}`);
  health.close();
  void supervisor.stop().then(() => process.exit(0));
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
/**
 * SIGHUP: the running daemons that reload are sent it first (a daemon started below has just read
 * its own config), then init reads its config again and starts the daemons it now lists that it
 * does not run: how the host adds a daemon, such as the git gate, to a running bundle. Only
 * `daemons` is applied again, and only its new names (Supervisor.add); the slug, the health port
 * and the grace period stay as init booted with. A file that is invalid or unreadable changes
 * nothing: one `reload-failed` event names the problem.
 */
process.on("SIGHUP", () => {
  supervisor.reload();
  let next: InitConfig;
  try {
    next = loadConfig();
  } catch (err) {
    const { reason, fields } = failure(err);
    log("reload-failed", `${reason}: keeping the daemons init runs`, fields);
    return;
  }
  supervisor.add(next.daemons);
});

log(
  "boot",
  `init for ${config.slug}: ${config.daemons.map((d) => d.name).join(", ") || "no daemons"}`,
);
supervisor.start();

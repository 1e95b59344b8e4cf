/**
 * bot-bottle's init: PID 1 of the sidecar bundle. Reads the plan's init config, supervises the
 * daemons (and probes those that declare a probe), forwards SIGHUP, stops on SIGTERM within a
 * deadline, and serves GET /health on loopback only (the agent cannot reach it).
 */
import { readFileSync, writeSync } from "node:fs";
import { ConfigFileError } from "../../shared/config-file.js";
import { INIT_CONFIG_PATH, parseInitConfig, type InitConfig } from "../../shared/init-config.js";
import { createLogger } from "../log.js";
import { healthEndpoint } from "./endpoint.js";
import { Supervisor } from "./supervisor.js";

const configPath = process.env["BOT_BOTTLE_INIT_CONFIG"] ?? INIT_CONFIG_PATH;

/** The config, or the process ends with a `config-invalid` event: nothing starts on a bad file. */
function readConfig(): InitConfig {
  try {
    return parseInitConfig(readFileSync(configPath, "utf8"), configPath);
  } catch (err) {
    // Written synchronously: the process exits on the next line.
    const slug = process.env["BOT_BOTTLE_SLUG"] ?? "unknown";
    createLogger(slug, "init", (line) => {
      writeSync(1, line);
      return true;
    })("config-invalid", `${err instanceof Error ? err.message : String(err)}: starting nothing`, {
      file: configPath,
      ...(err instanceof ConfigFileError ? { problems: err.problems } : {}),
    });
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
process.on("SIGHUP", () => supervisor.reload());

log(
  "boot",
  `init for ${config.slug}: ${config.daemons.map((d) => d.name).join(", ") || "no daemons"}`,
);
supervisor.start();

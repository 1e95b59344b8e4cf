/**
 * bot-bottle's init: PID 1 of the sidecar bundle. Reads the plan's init config, supervises the
 * daemons, forwards SIGHUP, stops on SIGTERM within a deadline, and serves GET /health on
 * loopback only (the agent cannot reach it).
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { INIT_CONFIG_PATH, type InitConfig } from "../../shared/init-config.js";
import { createLogger } from "../log.js";
import { Supervisor } from "./supervisor.js";

const configPath = process.env["BOT_BOTTLE_INIT_CONFIG"] ?? INIT_CONFIG_PATH;
const config = JSON.parse(readFileSync(configPath, "utf8")) as InitConfig;
const log = createLogger(config.slug, "init");
const supervisor = new Supervisor(config, log);

const health = createServer((req, res) => {
  const status = supervisor.status();
  res.writeHead(req.url === "/health" ? (status.ready ? 200 : 503) : 404, {
    "content-type": "application/json",
  });
  res.end(JSON.stringify(status));
});
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

/**
 * The egress interceptor, as init starts it inside the bundle (`--port N`): the loopback service
 * smolvm's `machine start --egress-interceptor` hands every admitted guest TCP flow to. Reads the
 * flows the host wrote and the token from the variable the config names (then drops it from the
 * environment); a bad file or a token that is not 64 hex digits ends the process with a
 * `config-invalid` event, so nothing is relayed. The config is read once: a change is a restart.
 */
import { readFileSync, writeSync } from "node:fs";
import { ConfigFileError } from "../../shared/config-file.js";
import {
  INTERCEPT_CONFIG_PATH,
  parseInterceptConfig,
  type InterceptConfig,
} from "../../shared/intercept-config.js";
import { createLogger } from "../log.js";
import { tokenFromHex } from "./flows.js";
import { InterceptServer } from "./server.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const configPath = arg("config") ?? INTERCEPT_CONFIG_PATH;

function invalid(path: string, message: string): ConfigFileError {
  return new ConfigFileError(configPath, "interceptor config", [{ path, message }]);
}

/** A whole number in [min, 65535] from the flag, or the fallback when the flag is absent. */
function numberArg(name: string, fallback: number, min: number): number {
  const text = arg(name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > 65535)
    throw invalid(`--${name}`, `must be a whole number from ${min} to 65535`);
  return n;
}

/** The config, the token and the listening port, or the process ends with `config-invalid`. */
function readStart(): { config: InterceptConfig; token: Buffer; port: number; deadlineMs: number } {
  try {
    const config = parseInterceptConfig(readFileSync(configPath, "utf8"), configPath);
    const token = tokenFromHex(process.env[config.tokenEnv]);
    delete process.env[config.tokenEnv];
    if (!token)
      throw invalid(
        "tokenEnv",
        `names ${config.tokenEnv}, which is unset or not 64 hex digits in the bundle (the interceptor never runs without its token)`,
      );
    return {
      config,
      token,
      // --port (as init passes it) wins over the file; 0 picks a free port (tests).
      port: numberArg("port", config.port, 0),
      deadlineMs: numberArg("deadline-ms", 5000, 1),
    };
  } catch (err) {
    // Written synchronously: the process exits on the next line.
    const slug = process.env["BOT_BOTTLE_SLUG"] ?? "unknown";
    createLogger(slug, "intercept", (line) => {
      writeSync(1, line);
      return true;
    })(
      "config-invalid",
      `${err instanceof Error ? err.message : String(err)}: refusing to start (every flow stays refused)`,
      {
        file: configPath,
        ...(err instanceof ConfigFileError ? { problems: err.problems } : {}),
      },
    );
    process.exit(1);
  }
}

const start = readStart();
const log = createLogger(start.config.slug, "intercept");
const interceptor = new InterceptServer({
  config: start.config,
  token: start.token,
  log,
  deadlineMs: start.deadlineMs,
  maxConnections: 1024,
});
const host = arg("host") ?? "0.0.0.0";

interceptor.listen(start.port, host).then(
  (port) =>
    log(
      "listen",
      `interceptor listening on ${host}:${port} with ${start.config.flows.length} flows`,
      { port, flows: start.config.flows.length },
    ),
  (err: unknown) => {
    log("fatal", `cannot listen on ${host}:${start.port}: ${String(err)}`);
    process.exit(1);
  },
);

process.on("SIGTERM", () => {
  void interceptor.close().then(() => process.exit(0));
});

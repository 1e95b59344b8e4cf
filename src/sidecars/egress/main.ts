/**
 * The egress daemon. Route matching, TLS interception, credential injection and secret scanning
 * are not in this version: until they are, it refuses every request — CONNECT and absolute-form
 * alike — with a recognisable 403 and one event line per decision. Failing closed is the point.
 */
import { createServer } from "node:http";
import { createLogger } from "../log.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const port = Number(arg("port") ?? 9099);
const slug = arg("slug") ?? "unknown";
const log = createLogger(slug, "egress");
const REFUSAL_TAG = "egress-not-configured";
const reason =
  "bot-bottle: this bottle's egress proxy refuses every request (routes are not enabled in this version)";

const server = createServer((req, res) => {
  log("refuse", reason, { method: req.method, target: req.url?.split("?")[0], tag: REFUSAL_TAG });
  res.writeHead(403, {
    "content-type": "text/plain",
    "x-bot-bottle-refusal": REFUSAL_TAG,
    connection: "close",
  });
  res.end(reason + "\n");
});
server.on("connect", (req, socket) => {
  log("refuse", reason, { method: "CONNECT", target: req.url, tag: REFUSAL_TAG });
  socket.end(
    `HTTP/1.1 403 Forbidden\r\nX-Bot-Bottle-Refusal: ${REFUSAL_TAG}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${reason}\n`,
  );
  socket.on("error", () => undefined);
});
server.on("clientError", (_err, socket) => socket.destroy());
server.listen(port, "0.0.0.0", () => log("listen", `egress listening on :${port}`, { port }));
process.on("SIGHUP", () =>
  log("reload", "nothing to reload: no routes are enabled in this version"),
);
process.on("SIGTERM", () => server.close(() => process.exit(0)));

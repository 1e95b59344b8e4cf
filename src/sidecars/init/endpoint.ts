/**
 * init's health endpoint: GET /health answers init's status report, 200 while the bundle is
 * ready (every daemon up, every probed daemon answering) and 503 otherwise. The caller listens on
 * loopback only: the agent never reaches it; the engine's health check asks it from inside.
 */
import { createServer, type Server } from "node:http";
import type { InitStatus } from "../../shared/init-config.js";

export function healthEndpoint(status: () => InitStatus): Server {
  return createServer((req, res) => {
    const report = status();
    res.writeHead(req.url === "/health" ? (report.ready ? 200 : 503) : 404, {
      "content-type": "application/json",
    });
    res.end(JSON.stringify(report));
  });
}

/**
 * Upgrades: only WebSocket, and never as a raw pipe. The upgrade request is admitted like any
 * other request; after the 101, every frame is parsed, what the agent sends is scanned and what
 * comes back is redacted, message by message; compression is never negotiated; and a reload that
 * removes the route closes the socket. Any other protocol (h2c, …) is refused.
 */
import type { IncomingMessage } from "node:http";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { admit, allowedPlaceholders, refusedForKey } from "./admission.js";
import { KEY_CHALLENGE, PROXY_AUTH_STATUS } from "./agent-key.js";
import { errorText, findingRefusal, pending } from "./audit.js";
import type { ProxyContext } from "./context.js";
import { Redactor } from "../dlp.js";
import { responseHeaders, upstreamOptions } from "./forward.js";
import { decideRequest, refuse, type Target } from "./policy.js";
import {
  checkUpgradeResponse,
  isWebSocketUpgrade,
  relayWebSocket,
  withoutExtensions,
} from "./websocket.js";

export async function handleUpgrade(
  ctx: ProxyContext,
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  tunnel: Target | undefined,
): Promise<void> {
  const tls = tunnel !== undefined;
  socket.on("error", () => socket.destroy());
  const p = pending("websocket", req.method ?? "GET", tunnel, req.url ?? "");
  // An upgrade ends the connection's life as HTTP: it waits for the requests before it, and
  // never follows a refusal.
  const release = await ctx.turns.take(socket);
  if (!release) {
    ctx.recorder.record(p, "refuse", "after-close", {
      reason: "bot-bottle: a request sent after a refusal on the same connection is not read",
    });
    return void socket.destroy();
  }
  socket.once("close", release);
  const noKey = tunnel === undefined ? refusedForKey(ctx.agentKey, req, p) : undefined;
  if (noKey) return ctx.recorder.refuseSocket(socket, p, noKey, PROXY_AUTH_STATUS, KEY_CHALLENGE);
  if (!isWebSocketUpgrade(req))
    return ctx.recorder.refuseSocket(
      socket,
      p,
      refuse(
        "upgrade-refused",
        `only WebSocket upgrades go through the proxy, not "${String(req.headers.upgrade ?? "").slice(0, 40)}" — send plain HTTP/1.1 requests`,
      ),
    );
  const rules = ctx.rules;
  const admitted = await admit(ctx, req, tunnel, p, rules, "a wss:// URL");
  if ("refusal" in admitted) return ctx.recorder.refuseSocket(socket, p, admitted.refusal);
  const { route, address } = admitted;
  // Compression would hide every frame's payload from the scanner: it is never offered.
  const headers = withoutExtensions({
    ...admitted.headers,
    connection: "Upgrade",
    upgrade: "websocket",
  });
  const target = p.target as Target;
  const upstream = (tls ? httpsRequest : httpRequest)({
    ...upstreamOptions(ctx, rules, target, tls, address),
    // An upgraded socket never goes back to a pool: its own connection, verified the same way.
    agent: false,
    ...({ secureContext: rules.upstreamTls } as object),
    method: req.method,
    path: p.path,
    headers,
  });
  upstream.setTimeout(ctx.limits.idleMs, () => upstream.destroy(new Error("no reply")));
  upstream.on("upgrade", (ures: IncomingMessage, usocket: Socket, uhead: Buffer) => {
    usocket.setNoDelay(true);
    usocket.setTimeout(0);
    if (socket.destroyed) {
      usocket.destroy();
      return ctx.recorder.record(p, "allow", "aborted", { route: route.host, status: 101 });
    }
    const problem = checkUpgradeResponse(ures.headers, String(req.headers["sec-websocket-key"]));
    if (problem) {
      usocket.destroy();
      return ctx.recorder.refuseSocket(socket, p, refuse("upgrade-refused", problem, route), 502);
    }
    const lines = [
      `HTTP/1.1 101 ${Redactor.text(ures.statusMessage || "Switching Protocols", rules.redactions)}`,
    ];
    for (let i = 0; i < ures.rawHeaders.length; i += 2)
      lines.push(
        `${Redactor.text(ures.rawHeaders[i] ?? "", rules.redactions)}: ${Redactor.text(ures.rawHeaders[i + 1] ?? "", rules.redactions)}`,
      );
    socket.write(lines.join("\r\n") + "\r\n\r\n");
    socket.setTimeout(ctx.limits.idleMs, () => relay.close(1001, "idle"));
    let why = "allowed";
    const method = req.method ?? "GET";
    const path = p.path;
    const forget = ctx.live.add({
      allowedUnder: (config) => {
        const again = decideRequest(config.routes, target, method, path, tls, config.extraHosts);
        return again.allow && again.route.host === route.host;
      },
      close: (reason) => {
        why = reason;
        relay.close(1008, "the route was removed");
      },
    });
    const relay = relayWebSocket({
      agent: socket,
      upstream: usocket,
      agentHead: head,
      upstreamHead: uhead,
      scan: () => rules.scanner.stream(allowedPlaceholders(route)),
      redact: () => (rules.redactions.length ? new Redactor(rules.redactions) : undefined),
      describe: (finding) => findingRefusal(finding, route).reason,
      onFinding: (finding) => {
        why = "refused";
        const r = findingRefusal(finding, route);
        ctx.recorder.record(p, "refuse", r.tag, { reason: r.reason, route: route.host });
      },
      onClose: (stats) => {
        forget();
        p.bytesOut = stats.bytesOut;
        p.bytesIn = stats.bytesIn;
        if (why !== "refused")
          ctx.recorder.record(p, "allow", why === "allowed" ? stats.why : why, {
            route: route.host,
            status: 101,
          });
      },
    });
  });
  upstream.on("response", (ures: IncomingMessage) => {
    const lines = [
      `HTTP/1.1 ${ures.statusCode ?? 502} ${Redactor.text(ures.statusMessage ?? "", rules.redactions)}`,
    ];
    const h = responseHeaders(ures.headers, rules);
    delete h["content-length"];
    for (const [k, v] of Object.entries(h))
      for (const one of [v].flat()) lines.push(`${k}: ${String(one)}`);
    lines.push("connection: close");
    socket.write(lines.join("\r\n") + "\r\n\r\n");
    const redactor = new Redactor(rules.redactions);
    ures.on("data", (c: Buffer) => socket.write(redactor.push(c)));
    ures.on("end", () => {
      socket.end(redactor.end());
      ctx.recorder.record(p, "allow", "not-upgraded", {
        route: route.host,
        status: ures.statusCode ?? 0,
      });
    });
  });
  upstream.on("error", (err) =>
    ctx.recorder.refuseSocket(
      socket,
      p,
      refuse("upgrade-failed", `the request to "${target.host}" failed: ${errorText(err)}`, route),
      502,
    ),
  );
  upstream.end();
}

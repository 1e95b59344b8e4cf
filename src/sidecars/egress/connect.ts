/**
 * CONNECT: once the agent's key checks out (where one is asked for, agent-key.ts; the requests
 * inside the tunnel are not asked again), a tunnel to a declared host, either decrypted with the
 * bottle's CA (its requests then go through admission one by one) or, for a `tls_passthrough`
 * route, relayed untouched once the ClientHello's server name matches the target. Either must
 * finish its handshake in time, and either is closed when a reload removes its route.
 */
import type { IncomingMessage } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import { TLSSocket } from "node:tls";
import type { RouteRule } from "../../shared/egress-config.js";
import { KEY_CHALLENGE, PROXY_AUTH_STATUS } from "./agent-key.js";
import { refusedForKey } from "./admission.js";
import { errorText, pending, type Pending } from "./audit.js";
import type { ProxyContext } from "./context.js";
import { decideConnect, parseAuthority, refuse, type Refusal, type Target } from "./policy.js";
import { readSni } from "./sni.js";

export function handleConnect(
  ctx: ProxyContext,
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
): void {
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy());
  const p = pending("connect", "CONNECT", undefined, "");
  let target: Target | undefined;
  let route: RouteRule;
  try {
    target = parseAuthority(req.url ?? "", 443);
    // The key first: a caller without it learns nothing of the routes.
    const noKey = refusedForKey(ctx.agentKey, req, p);
    if (noKey) {
      p.target = target;
      return ctx.recorder.refuseSocket(socket, p, noKey, PROXY_AUTH_STATUS, KEY_CHALLENGE);
    }
    if (!target || !/:\d+$/.test(req.url ?? ""))
      return ctx.recorder.refuseSocket(
        socket,
        p,
        refuse("bad-host", "CONNECT needs host:port"),
        400,
      );
    p.target = target;
    const decision = decideConnect(ctx.rules.config.routes, target, ctx.rules.config.extraHosts);
    if (!decision.allow) return ctx.recorder.refuseSocket(socket, p, decision);
    route = decision.route;
  } catch (err) {
    return ctx.recorder.refuseSocket(
      socket,
      p,
      refuse("rule-error", `a rule failed (${errorText(err)}); refused to be safe`),
    );
  }
  const tunnelTarget = target;
  const closed: { why?: string } = {};
  // A passthrough tunnel is decided once, so a reload decides it again; a decrypted tunnel's
  // requests are each decided under the rules of their moment (its WebSockets hold themselves).
  if (route.tlsPassthrough) {
    const forget = ctx.live.add({
      allowedUnder: (config) => {
        const again = decideConnect(config.routes, tunnelTarget, config.extraHosts);
        return again.allow && again.route.tlsPassthrough;
      },
      close: (why) => {
        closed.why = why;
        socket.destroy();
      },
    });
    socket.once("close", forget);
  }
  // The handshake (or, for a passthrough, the ClientHello) must come in time.
  const handshake = setTimeout(() => {
    ctx.recorder.record(p, "refuse", "handshake-timeout", {
      reason: `bot-bottle: no TLS handshake within ${ctx.limits.handshakeMs} ms of CONNECT`,
      route: route.host,
    });
    socket.destroy();
  }, ctx.limits.handshakeMs);
  socket.once("close", () => clearTimeout(handshake));
  if (route.tlsPassthrough)
    return passthrough(ctx, socket, head, tunnelTarget, route, p, closed, () =>
      clearTimeout(handshake),
    );
  intercept(ctx, socket, head, tunnelTarget, p, () => clearTimeout(handshake));
}

function intercept(
  ctx: ProxyContext,
  socket: Socket,
  head: Buffer,
  target: Target,
  p: Pending,
  handshakeDone: () => void,
): void {
  socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
  if (head.length) socket.unshift(head);
  let sniProblem: Refusal | undefined;
  const tlsSocket = new TLSSocket(socket, {
    isServer: true,
    secureContext: ctx.options.ca.context(target.host),
    ALPNProtocols: ["http/1.1"],
    SNICallback: (name, cb) => {
      const asked = parseAuthority(name, target.port);
      if (!asked || asked.host !== target.host) {
        sniProblem = refuse(
          "sni-mismatch",
          `the TLS server name does not match the CONNECT target "${target.host}"`,
        );
        return cb(new Error("server name mismatch"));
      }
      cb(null, ctx.options.ca.context(target.host));
    },
  });
  let established = false;
  tlsSocket.once("secure", () => {
    established = true;
    handshakeDone();
  });
  tlsSocket.on("error", (err) => {
    if (!established)
      ctx.recorder.record(p, "refuse", sniProblem?.tag ?? "tls-handshake-failed", {
        reason:
          sniProblem?.reason ??
          `bot-bottle: the TLS handshake with the agent failed (${errorText(err)}) — does the client trust the bottle's CA?`,
      });
    tlsSocket.destroy();
  });
  tlsSocket.once("close", () => socket.destroy());
  ctx.tunnels.set(tlsSocket, target);
  ctx.inner.emit("connection", tlsSocket);
}

function passthrough(
  ctx: ProxyContext,
  socket: Socket,
  head: Buffer,
  target: Target,
  route: RouteRule,
  p: Pending,
  closed: { why?: string },
  helloDone: () => void,
): void {
  p.kind = "tunnel";
  socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
  let buffered = head;
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    const sni = readSni(buffered);
    if (sni === "incomplete" && buffered.length < 16_384) return;
    socket.off("data", onData);
    socket.pause();
    helloDone();
    if (sni === "incomplete" || sni === "not-tls") {
      ctx.recorder.record(p, "refuse", "not-tls", {
        reason: "bot-bottle: a passthrough tunnel carries TLS only",
        route: route.host,
      });
      return socket.destroy();
    }
    if (sni.name !== undefined && parseAuthority(sni.name, target.port)?.host !== target.host) {
      ctx.recorder.record(p, "refuse", "sni-mismatch", {
        reason: `bot-bottle: the TLS server name does not match the CONNECT target "${target.host}"`,
        route: route.host,
      });
      return socket.destroy();
    }
    const rules = ctx.rules;
    void ctx.resolver
      .resolve(target, rules.config.extraHosts, rules.scanner, ctx.options.secrets)
      .then((address) => {
        if ("allow" in address) {
          ctx.recorder.record(p, "refuse", address.tag, {
            reason: address.reason,
            route: route.host,
          });
          return socket.destroy();
        }
        if (socket.destroyed) return;
        const upstream = netConnect({ host: address.address, port: target.port });
        upstream.setNoDelay(true);
        upstream.on("connect", () => {
          upstream.write(buffered);
          p.bytesOut += buffered.length;
          socket.on("data", (c: Buffer) => (p.bytesOut += c.length));
          upstream.on("data", (c: Buffer) => (p.bytesIn += c.length));
          socket.pipe(upstream);
          upstream.pipe(socket);
          socket.resume();
        });
        let done = false;
        const finish = (tag: string) => {
          if (done) return;
          done = true;
          ctx.recorder.record(p, "allow", closed.why ?? tag, { route: route.host });
          upstream.destroy();
          socket.destroy();
        };
        upstream.on("error", () => finish("upstream-error"));
        upstream.on("close", () => finish("allowed"));
        socket.on("close", () => finish("allowed"));
      });
  };
  socket.on("data", onData);
  if (head.length) onData(Buffer.alloc(0));
}

/**
 * The interceptor's TCP service. Per connection: the preamble, read under a deadline and a size
 * bound; a bad one (magic, version, family, token, cut short or too slow) closes the connection
 * without a byte — fail closed, the guest sees its flow reset. A destination no flow admits gets
 * ECONNREFUSED; an admitted one is dialled on 127.0.0.1:<to>, and the guest gets 0 and a relay
 * both ways (bytes that came behind the preamble go first), or the errno of the failed dial.
 * Events never carry the token, presented or expected.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import type { InterceptConfig } from "../../shared/intercept-config.js";
import type { Logger } from "../log.js";
import { admittingFlow, ECONNREFUSED, errnoFor, tokenMatches, VERDICT_CONNECTED } from "./flows.js";
import { parsePreamble, type Preamble } from "./preamble.js";
import { listenOn } from "../listen.js";

export interface InterceptOptions {
  config: InterceptConfig;
  /** The 32 token bytes every preamble must carry. */
  token: Buffer;
  log: Logger;
  /** How long a connection may take to deliver its whole preamble. */
  deadlineMs: number;
  /** Connections beyond this many at once are closed on arrival. */
  maxConnections: number;
}

const destination = (p: Preamble) =>
  p.family === 6 ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;

export class InterceptServer {
  readonly server: Server;
  private readonly open = new Set<Socket>();

  constructor(private readonly o: InterceptOptions) {
    this.server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
    this.server.maxConnections = o.maxConnections;
    this.server.on("drop", (d) =>
      o.log("refuse", "too many connections at once: closed on arrival", {
        reason: "busy",
        peer: d?.remoteAddress,
      }),
    );
  }

  listen(port: number, host: string): Promise<number> {
    return listenOn(this.server, port, host);
  }

  /** Stops listening and cuts every flow (each guest sees its connection end). */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.open) s.destroy();
    return closed;
  }

  private accept(guest: Socket): void {
    this.open.add(guest);
    guest.on("close", () => this.open.delete(guest));
    guest.on("error", () => guest.destroy());
    let received = Buffer.alloc(0);
    let settled = false;
    const refuse = (reason: string, message: string) => {
      settle();
      this.o.log("refuse", `${message}: closed without a verdict`, {
        reason,
        peer: guest.remoteAddress,
      });
      guest.destroy();
    };
    const timer = setTimeout(
      () => refuse("deadline", `no whole preamble within ${this.o.deadlineMs} ms`),
      this.o.deadlineMs,
    );
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const r = parsePreamble(received);
      if (r.kind === "incomplete") return;
      if (r.kind === "invalid") {
        refuse(r.problem, `the preamble's ${r.problem} is wrong`);
        return;
      }
      settle();
      guest.pause();
      if (!tokenMatches(this.o.token, r.preamble.token)) {
        refuse("token", "the preamble's token is wrong");
        return;
      }
      this.route(guest, r.preamble, received.subarray(r.length));
    };
    // No byte at all is a port probe (init's readiness check), told apart from a cut preamble.
    const onEnd = () =>
      received.length === 0
        ? refuse("empty", "the connection ended before any byte")
        : refuse("truncated", "the connection ended inside the preamble");
    function settle() {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      guest.off("data", onData);
      guest.off("end", onEnd);
    }
    guest.on("data", onData);
    guest.on("end", onEnd);
    guest.on("close", settle);
  }

  private route(guest: Socket, p: Preamble, rest: Buffer): void {
    const flow = admittingFlow(this.o.config.flows, p);
    const dest = destination(p);
    if (!flow) {
      this.o.log("refuse", `${dest} is not admitted: ECONNREFUSED`, {
        reason: "not-admitted",
        destination: dest,
        errno: ECONNREFUSED,
      });
      guest.end(Buffer.from([ECONNREFUSED]));
      return;
    }
    const upstream = connect({ host: "127.0.0.1", port: flow.to, allowHalfOpen: true });
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      this.o.log("admit", `${dest} relayed to :${flow.to}`, { destination: dest, to: flow.to });
      guest.write(Buffer.from([VERDICT_CONNECTED]));
      if (rest.length > 0) upstream.write(rest);
      guest.pipe(upstream);
      upstream.pipe(guest);
      guest.resume();
    });
    upstream.on("error", (err: NodeJS.ErrnoException) => {
      if (connected) {
        guest.destroy();
        return;
      }
      const errno = errnoFor(err.code);
      this.o.log("upstream-failed", `${dest}: :${flow.to} unreachable (${err.code ?? "error"})`, {
        destination: dest,
        to: flow.to,
        errno,
      });
      if (!guest.destroyed) guest.end(Buffer.from([errno]));
    });
    guest.on("close", () => upstream.destroy());
  }
}

/**
 * WebSocket relaying (RFC 6455) for the egress proxy. After an upgrade is answered 101 the
 * connection is still the proxy's: every frame from either side is parsed, each message the
 * agent sends runs through a streaming secret scan (one scan spanning all of its fragments) and
 * each message that comes back through a redactor, and only what those release is forwarded, in
 * frames the relay encodes itself. A finding, a protocol error or the proxy's own `close` ends the
 * connection with a close frame to both sides.
 *
 * No extension is ever in effect: the proxy drops `Sec-WebSocket-Extensions` from the upgrade
 * request (`withoutExtensions`) and refuses a 101 that names one (`checkUpgradeResponse`), so a
 * frame with a reserved bit set (a compressed one, say) is a protocol error here.
 */
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { Duplex } from "node:stream";
import {
  closePayload,
  encodeFrame,
  FrameParser,
  Opcode,
  ProtocolError,
  validCloseCode,
  type FrameHeader,
  type FrameSink,
} from "./ws-frames.js";

// --- the upgrade handshake --------------------------------------------------------------------

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The Sec-WebSocket-Accept a server must answer `key` with. */
export function acceptFor(key: string): string {
  return createHash("sha1")
    .update(key + GUID)
    .digest("base64");
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
}

/**
 * True only for a WebSocket opening handshake the relay can carry: GET, `Upgrade: websocket` as
 * the one token, `Connection` listing `upgrade`, a well-formed `Sec-WebSocket-Key` and version 13.
 * Every other upgrade (h2c, a second protocol, an old draft) is the proxy's to refuse.
 */
export function isWebSocketUpgrade(req: {
  method?: string | undefined;
  headers: IncomingHttpHeaders;
}): boolean {
  const { headers } = req;
  if (req.method !== "GET") return false;
  if (single(headers.upgrade)?.trim().toLowerCase() !== "websocket") return false;
  const connection = single(headers.connection)?.toLowerCase().split(",") ?? [];
  if (!connection.some((token) => token.trim() === "upgrade")) return false;
  const key = single(headers["sec-websocket-key"])?.trim() ?? "";
  if (!/^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key)) return false;
  return single(headers["sec-websocket-version"])?.trim() === "13";
}

/** The upgrade request's headers without `Sec-WebSocket-Extensions`, whatever its spelling. */
export function withoutExtensions<T extends Record<string, unknown>>(headers: T): T {
  const out: Record<string, unknown> = { ...headers };
  for (const name of Object.keys(out))
    if (name.toLowerCase() === "sec-websocket-extensions") delete out[name];
  return out as T;
}

/**
 * Why the upstream's 101 must be refused, or undefined when the relay can carry it: an upstream
 * that negotiates an extension (permessage-deflate would hide every payload from the scan),
 * switches to something other than websocket, or (given the request's key) answers with the
 * wrong Sec-WebSocket-Accept.
 */
export function checkUpgradeResponse(
  headers: IncomingHttpHeaders,
  key?: string,
): string | undefined {
  if (headers["sec-websocket-extensions"] !== undefined)
    return "the upstream negotiated a WebSocket extension, which the proxy does not allow";
  if (single(headers.upgrade)?.trim().toLowerCase() !== "websocket")
    return "the upstream switched to a protocol other than websocket";
  if (key !== undefined && single(headers["sec-websocket-accept"])?.trim() !== acceptFor(key))
    return "the upstream answered with a wrong Sec-WebSocket-Accept";
  return undefined;
}

// --- the relay --------------------------------------------------------------------------------

/** A streaming transformation of one message's payload: a scan (agent→upstream) or a redactor. */
export interface MessageScan<F> {
  push(chunk: Buffer): { forward: Buffer; finding?: F };
  end(): Buffer;
}

export interface MessageRedact {
  push(chunk: Buffer): Buffer;
  end(): Buffer;
}

export interface RelayStats {
  /** Bytes read from the agent. */
  bytesOut: number;
  /** Bytes read from the upstream. */
  bytesIn: number;
  /** Why the connection ended, for the audit line. */
  why: string;
}

export interface RelayOptions<F> {
  /** The agent's socket: its frames are masked (client→server). */
  agent: Duplex;
  /** The upstream's socket: its frames are unmasked (server→client). */
  upstream: Duplex;
  /** Bytes the agent sent past its upgrade request's head. */
  agentHead?: Buffer;
  /** Bytes the upstream sent past its 101's head. */
  upstreamHead?: Buffer;
  /** A fresh streaming scan, one per message (and one per control frame) the agent sends. */
  scan: () => MessageScan<F>;
  /** A fresh redactor, one per message (and per control frame) from the upstream; none: as is. */
  redact: () => MessageRedact | undefined;
  /**
   * Called once, on the first finding, after the relay has stopped forwarding and closed: the
   * agent gets a 1008 close frame with the reason, the upstream one that says only "refused",
   * and both sockets are ended.
   */
  onFinding: (finding: F) => void;
  /** The close frame's short reason for a finding (sent to the agent after "bot-bottle: "). */
  describe?: (finding: F) => string;
  /** Called once, when both sockets have closed. */
  onClose: (stats: RelayStats) => void;
  /** Default 16 MiB. */
  maxFrameBytes?: number;
  /** Default 64 MiB, across a message's fragments. */
  maxMessageBytes?: number;
}

export interface WebSocketRelay {
  /**
   * Ends the connection from the proxy's side (its route was removed, the proxy is closing):
   * a close frame with `code` and "bot-bottle: <reason>" to both sides (the prefix is not
   * doubled when `reason` already has it), then both sockets ended.
   */
  close(code: number, reason: string): void;
}

/** Writing side's buffer above which the reading side is paused until it drains. */
const HIGH_WATER = 1024 * 1024;
/** How long an ended socket may take to close before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

class Found<F> extends Error {
  constructor(readonly finding: F) {
    super("finding");
  }
}

interface Message<F> {
  opcode: number;
  transform: MessageScan<F>;
  /** A frame of this message has been sent: the next ones are continuations. */
  started: boolean;
  bytes: number;
}

/** One direction's message state: frames in from the parser, re-encoded frames out. */
class Direction<F> implements FrameSink {
  private message: Message<F> | undefined;
  private out: Buffer[] = [];
  /** A close frame was passed on this way (so the relay must not send another). */
  closeCode: number | undefined;

  constructor(
    private readonly toServer: boolean,
    private readonly transform: () => MessageScan<F>,
    private readonly maxMessageBytes: number,
  ) {}

  /** The frames to write for what has been parsed so far. */
  take(): Buffer | undefined {
    if (this.out.length === 0) return undefined;
    const data = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out);
    this.out = [];
    return data;
  }

  dataStart(header: FrameHeader): void {
    if (header.opcode === Opcode.continuation) {
      if (this.message === undefined)
        throw new ProtocolError(1002, "a continuation frame with no message to continue");
    } else {
      if (this.message !== undefined)
        throw new ProtocolError(1002, "a new message inside a fragmented one");
      this.message = {
        opcode: header.opcode,
        transform: this.transform(),
        started: false,
        bytes: 0,
      };
    }
    if (this.message.bytes + header.length > this.maxMessageBytes)
      throw new ProtocolError(1009, `a message over ${this.maxMessageBytes} bytes`);
  }

  dataPayload(bytes: Buffer): void {
    const m = this.message;
    if (m === undefined) return;
    m.bytes += bytes.length;
    const r = m.transform.push(bytes);
    if (r.finding !== undefined) throw new Found(r.finding);
    this.emit(m, r.forward, false);
  }

  dataEnd(header: FrameHeader): void {
    const m = this.message;
    if (m === undefined || !header.fin) return;
    this.message = undefined;
    this.emit(m, m.transform.end(), true);
  }

  control(opcode: number, payload: Buffer): void {
    const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    if (opcode === Opcode.close) {
      if (payload.length === 1) throw new ProtocolError(1002, "a close frame with a 1-byte body");
      if (payload.length >= 2 && !validCloseCode(code))
        throw new ProtocolError(1002, `a close frame with code ${code}`);
    }
    const t = this.transform();
    const r = t.push(payload);
    if (r.finding !== undefined) throw new Found(r.finding);
    const forward = Buffer.concat([r.forward, t.end()]);
    this.out.push(...encodeFrame(opcode, true, forward, this.toServer));
    if (opcode === Opcode.close) this.closeCode = code;
  }

  private emit(m: Message<F>, bytes: Buffer, fin: boolean): void {
    if (!fin && bytes.length === 0) return;
    this.out.push(
      ...encodeFrame(m.started ? Opcode.continuation : m.opcode, fin, bytes, this.toServer),
    );
    m.started = true;
  }
}

/**
 * Relays one upgraded WebSocket connection between the agent and the upstream, frame by frame,
 * scanning what the agent sends and redacting what comes back. Returns the proxy's handle to
 * close it.
 */
export function relayWebSocket<F>(opts: RelayOptions<F>): WebSocketRelay {
  const { agent, upstream } = opts;
  const maxFrameBytes = opts.maxFrameBytes ?? 16 * 1024 * 1024;
  const maxMessageBytes = opts.maxMessageBytes ?? 64 * 1024 * 1024;
  let bytesOut = 0;
  let bytesIn = 0;
  let why: string | undefined;
  let grace: NodeJS.Timeout | undefined;

  const toUpstream = new Direction<F>(true, opts.scan, maxMessageBytes);
  const toAgent = new Direction<F>(
    false,
    () => {
      const r = opts.redact();
      return r === undefined
        ? { push: (chunk) => ({ forward: chunk }), end: () => Buffer.alloc(0) }
        : { push: (chunk) => ({ forward: r.push(chunk) }), end: () => r.end() };
    },
    maxMessageBytes,
  );
  const fromAgent = new FrameParser(true, maxFrameBytes, toUpstream);
  const fromUpstream = new FrameParser(false, maxFrameBytes, toAgent);

  const write = (to: Duplex, data: Buffer | undefined): void => {
    if (data !== undefined && data.length && !to.destroyed && !to.writableEnded) to.write(data);
  };

  const shutdown = (reason: string, toAgentFrame?: Buffer, toUpstreamFrame?: Buffer): void => {
    if (why !== undefined) return;
    why = reason;
    write(agent, toAgentFrame);
    write(upstream, toUpstreamFrame);
    for (const s of [agent, upstream]) {
      if (!s.destroyed && !s.writableEnded) s.end();
      // Read on to the end (discarding) so the peer's FIN is seen and the socket can close.
      s.resume();
    }
    grace = setTimeout(() => {
      agent.destroy();
      upstream.destroy();
    }, CLOSE_GRACE_MS);
    grace.unref();
  };

  /** A close frame to each side that has not had one yet, then shutdown. */
  const closeBoth = (code: number, reason: string, upstreamReason = reason): void => {
    const frame = (text: string, mask: boolean): Buffer => {
      const said = text.startsWith("bot-bottle: ") ? text : `bot-bottle: ${text}`;
      return Buffer.concat(encodeFrame(Opcode.close, true, closePayload(code, said), mask));
    };
    shutdown(
      reason,
      toAgent.closeCode === undefined ? frame(reason, false) : undefined,
      toUpstream.closeCode === undefined ? frame(upstreamReason, true) : undefined,
    );
  };

  const feed = (
    parser: FrameParser,
    direction: Direction<F>,
    chunk: Buffer,
    from: Duplex,
    to: Duplex,
  ): void => {
    if (why !== undefined) return;
    try {
      parser.push(chunk);
    } catch (err) {
      // What was parsed cleanly before the failure still goes; nothing after it.
      write(to, direction.take());
      if (err instanceof Found) {
        const finding = err.finding as F;
        const short = opts.describe?.(finding) ?? "a secret in a message";
        // Closed first, so nothing the finding's handler does can let another byte through.
        closeBoth(1008, `refused: ${short}`, "refused");
        opts.onFinding(finding);
      } else if (err instanceof ProtocolError) {
        closeBoth(err.code, `protocol error: ${err.message}`);
      } else {
        closeBoth(1011, `internal error: ${err instanceof Error ? err.message : String(err)}`);
      }
      return;
    }
    write(to, direction.take());
    if (toUpstream.closeCode !== undefined && toAgent.closeCode !== undefined)
      return shutdown(`closed (${toUpstream.closeCode}/${toAgent.closeCode})`);
    if (to.writableLength > HIGH_WATER && !from.isPaused()) {
      from.pause();
      to.once("drain", () => {
        if (why === undefined) from.resume();
      });
    }
  };

  let open = 2;
  const closed = (): void => {
    if (--open > 0) return;
    if (grace !== undefined) clearTimeout(grace);
    opts.onClose({ bytesOut, bytesIn, why: why ?? "closed" });
  };
  const watch = (s: Duplex, name: string): void => {
    s.on("error", (err: Error) => {
      shutdown(`${name} error: ${err.message}`);
      s.destroy();
    });
    s.on("end", () => shutdown(`${name} ended the connection`));
    if (s.closed) queueMicrotask(closed);
    else
      s.once("close", () => {
        shutdown(`${name} closed the connection`);
        closed();
      });
  };
  watch(agent, "the agent");
  watch(upstream, "the upstream");

  if (opts.upstreamHead?.length) {
    bytesIn += opts.upstreamHead.length;
    feed(fromUpstream, toAgent, opts.upstreamHead, upstream, agent);
  }
  if (opts.agentHead?.length) {
    bytesOut += opts.agentHead.length;
    feed(fromAgent, toUpstream, opts.agentHead, agent, upstream);
  }
  agent.on("data", (chunk: Buffer) => {
    bytesOut += chunk.length;
    feed(fromAgent, toUpstream, chunk, agent, upstream);
  });
  upstream.on("data", (chunk: Buffer) => {
    bytesIn += chunk.length;
    feed(fromUpstream, toAgent, chunk, upstream, agent);
  });

  return {
    close(code: number, reason: string): void {
      closeBoth(code, reason);
    },
  };
}

/**
 * The WebSocket relay between two real loopback TCP connections: an agent-side client and a
 * small WebSocket echo server, both written here on node:net with their own framing, and between
 * them an upgrade handler shaped like the egress proxy's (isWebSocketUpgrade, withoutExtensions,
 * checkUpgradeResponse, relayWebSocket) with the real SecretScanner and Redactor.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer as createHttpServer, request as httpRequest, type Server } from "node:http";
import {
  connect,
  createServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { after, before, describe, test } from "node:test";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { Redactor, SecretScanner, type Finding } from "../../../src/sidecars/dlp.js";
import {
  checkUpgradeResponse,
  isWebSocketUpgrade,
  relayWebSocket,
  withoutExtensions,
  type RelayStats,
  type WebSocketRelay,
} from "../../../src/sidecars/egress/websocket.js";

const TOKEN = "sk-ant-api03-" + "Q7fLk2ZpX9mWc4RtBv8NhYs3JdGe6UaKo1TiPx5E";
const PLACEHOLDER = placeholderFor(TOKEN, "ANTHROPIC_API_KEY", "ws-test");
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// --- framing, independent of the relay's -------------------------------------------------------

interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

function encode(
  opcode: number,
  payload: Buffer | string,
  o: { fin?: boolean; mask: boolean; rsv?: number; claim?: bigint },
): Buffer {
  const body = Buffer.from(payload);
  const head = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  const m = o.mask ? 0x80 : 0;
  if (o.claim !== undefined || body.length >= 65536) {
    const len = o.claim ?? BigInt(body.length);
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((len >> BigInt(8 * i)) & 0xffn));
  } else if (body.length >= 126) head.push(m | 126, body.length >> 8, body.length & 0xff);
  else head.push(m | body.length);
  if (!o.mask) return Buffer.concat([Buffer.from(head), body]);
  const key = randomBytes(4);
  return Buffer.concat([
    Buffer.from(head),
    key,
    Buffer.from(body.map((b, i) => b ^ (key[i % 4] ?? 0))),
  ]);
}

/** Reads frames off a socket as they complete. */
class FrameReader {
  frames: Frame[] = [];
  private buf = Buffer.alloc(0);

  feed(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = (b[1] ?? 0) & 0x7f;
      let p = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        p = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        p = 10;
      }
      const masked = ((b[1] ?? 0) & 0x80) !== 0;
      const key = masked ? b.subarray(p, p + 4) : Buffer.alloc(4);
      if (masked) p += 4;
      if (b.length < p + len) return;
      const payload = Buffer.from(b.subarray(p, p + len).map((x, i) => x ^ (key[i % 4] ?? 0)));
      const b0 = b[0] ?? 0;
      this.frames.push({
        fin: (b0 & 0x80) !== 0,
        rsv: (b0 >> 4) & 7,
        opcode: b0 & 0x0f,
        masked,
        payload,
      });
      this.buf = b.subarray(p + len);
    }
  }

  /** Data messages (fragments joined), text as latin1. */
  messages(): string[] {
    const out: string[] = [];
    let parts: Buffer[] = [];
    for (const f of this.frames) {
      if (f.opcode & 0x8) continue;
      parts.push(f.payload);
      if (f.fin) {
        out.push(Buffer.concat(parts).toString("latin1"));
        parts = [];
      }
    }
    return out;
  }

  close(): { code: number; reason: string } | undefined {
    const c = this.frames.find((f) => f.opcode === 8);
    return c && { code: c.payload.readUInt16BE(0), reason: c.payload.subarray(2).toString() };
  }
}

/** Reads an HTTP head off a socket; resolves with it and whatever followed it. */
function readHead(socket: Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      resolve({ head: buf.subarray(0, end).toString(), rest: buf.subarray(end + 4) });
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

async function waitFor(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// --- the echo server ---------------------------------------------------------------------------

interface Connection {
  head: string;
  reader: FrameReader;
  closed: boolean;
}

/**
 * Echoes each message back in one frame; answers "send-token" with the real token split over two
 * frames; answers a ping with a pong and a close with a close. On the path /deflate it claims
 * permessage-deflate in its 101.
 */
function echoServer(connections: Connection[]): NetServer {
  return createServer((socket) => {
    socket.on("error", () => socket.destroy());
    void readHead(socket).then(({ head, rest }) => {
      const conn: Connection = { head, reader: new FrameReader(), closed: false };
      connections.push(conn);
      socket.on("close", () => (conn.closed = true));
      const key = /^sec-websocket-key:\s*(\S+)/im.exec(head)?.[1] ?? "";
      const accept = createHash("sha1")
        .update(key + GUID)
        .digest("base64");
      const deflate = head.startsWith("GET /deflate ")
        ? "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        : "";
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\n${deflate}\r\n`,
      );
      let seen = 0;
      let parts: Buffer[] = [];
      let opcode = 1;
      const onData = (chunk: Buffer) => {
        conn.reader.feed(chunk);
        for (; seen < conn.reader.frames.length; seen++) {
          const f = conn.reader.frames[seen]!;
          assert.ok(f.masked, "the relay masks what it sends upstream");
          if (f.opcode === 8) {
            socket.end(encode(8, f.payload.subarray(0, 2), { mask: false }));
            return;
          }
          if (f.opcode === 9) socket.write(encode(10, f.payload, { mask: false }));
          if (f.opcode & 0x8) continue;
          if (f.opcode !== 0) opcode = f.opcode;
          parts.push(f.payload);
          if (!f.fin) continue;
          const message = Buffer.concat(parts);
          parts = [];
          if (message.toString() === "send-token") {
            socket.write(encode(1, "token=" + TOKEN.slice(0, 20), { fin: false, mask: false }));
            socket.write(encode(0, TOKEN.slice(20) + ";", { mask: false }));
          } else socket.write(encode(opcode, message, { mask: false }));
        }
      };
      if (rest.length) onData(rest);
      socket.on("data", onData);
    });
  });
}

// --- the proxy side ----------------------------------------------------------------------------

interface Proxied {
  relay: WebSocketRelay;
  findings: Finding[];
  stats?: RelayStats;
}

function proxyServer(upstreamPort: () => number, proxied: Proxied[], refusals: string[]): Server {
  const scanner = new SecretScanner(
    [{ name: "ANTHROPIC_API_KEY", value: TOKEN }],
    [{ name: "ANTHROPIC_API_KEY", value: PLACEHOLDER }],
  );
  const pairs = [{ real: Buffer.from(TOKEN), placeholder: Buffer.from(PLACEHOLDER) }];
  const server = createHttpServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req, socket: Socket, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    if (!isWebSocketUpgrade(req)) {
      refusals.push("not a websocket upgrade");
      socket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
      return;
    }
    const key = String(req.headers["sec-websocket-key"]);
    const upstream = httpRequest({
      host: "127.0.0.1",
      port: upstreamPort(),
      path: req.url,
      headers: withoutExtensions(req.headers),
    });
    upstream.on("upgrade", (ures, usocket: Socket, uhead: Buffer) => {
      const refusal = checkUpgradeResponse(ures.headers, key);
      if (refusal) {
        refusals.push(refusal);
        usocket.destroy();
        socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${String(ures.headers["sec-websocket-accept"])}\r\n\r\n`,
      );
      const entry: Proxied = { findings: [] } as unknown as Proxied;
      entry.relay = relayWebSocket<Finding>({
        agent: socket,
        upstream: usocket,
        agentHead: head,
        upstreamHead: uhead,
        scan: () => scanner.stream(new Set(["ANTHROPIC_API_KEY"])),
        redact: () => new Redactor(pairs),
        onFinding: (f) => entry.findings.push(f),
        describe: (f) => f.description,
        onClose: (s) => (entry.stats = s),
      });
      proxied.push(entry);
    });
    upstream.on("error", () => socket.destroy());
    upstream.end();
  });
  return server;
}

// --- the agent ---------------------------------------------------------------------------------

interface Agent {
  socket: Socket;
  reader: FrameReader;
  status: string;
  closed: Promise<void>;
  send(opcode: number, payload: string | Buffer, o?: { fin?: boolean }): void;
}

async function agentConnect(port: number, path = "/chat"): Promise<Agent> {
  const socket = connect(port, "127.0.0.1");
  await new Promise((r) => socket.once("connect", r));
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  socket.on("error", () => socket.destroy());
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: upstream.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
  );
  const { head, rest } = await readHead(socket);
  const reader = new FrameReader();
  reader.feed(rest);
  socket.on("data", (c: Buffer) => reader.feed(c));
  socket.on("end", () => socket.end());
  return {
    socket,
    reader,
    status: head.split("\r\n")[0] ?? "",
    closed,
    send: (opcode, payload, o = {}) => socket.write(encode(opcode, payload, { ...o, mask: true })),
  };
}

// --- tests -------------------------------------------------------------------------------------

describe("websocket relay over loopback TCP", () => {
  const connections: Connection[] = [];
  const proxied: Proxied[] = [];
  const refusals: string[] = [];
  let echo: NetServer;
  let proxy: Server;
  let proxyPort = 0;

  before(async () => {
    echo = echoServer(connections);
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    proxy = proxyServer(() => (echo.address() as AddressInfo).port, proxied, refusals);
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    proxyPort = (proxy.address() as AddressInfo).port;
  });
  after(async () => {
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
    await new Promise((r) => echo.close(r));
  });

  /** Connects an agent and waits for its relay and its upstream connection to exist. */
  async function open(): Promise<{ agent: Agent; conn: Connection; entry: Proxied }> {
    const [nConn, nProxied] = [connections.length, proxied.length];
    const agent = await agentConnect(proxyPort);
    assert.equal(agent.status, "HTTP/1.1 101 Switching Protocols");
    await waitFor("the relay", () => proxied.length > nProxied && connections.length > nConn);
    return { agent, conn: connections[nConn]!, entry: proxied[nProxied]! };
  }

  test("a message round trip, with the route's own placeholder (its allowed twin)", async () => {
    const { agent, conn, entry } = await open();
    assert.doesNotMatch(conn.head, /sec-websocket-extensions/i, "no extension is offered upstream");
    const big = "x".repeat(100_000);
    agent.send(1, `hello, my key is ${PLACEHOLDER}`);
    agent.send(2, big);
    agent.send(9, "are you there");
    await waitFor("the echoes", () => agent.reader.messages().length === 2);
    assert.deepEqual(agent.reader.messages(), [`hello, my key is ${PLACEHOLDER}`, big]);
    await waitFor("the pong", () => agent.reader.frames.some((f) => f.opcode === 10));
    assert.ok(agent.reader.frames.every((f) => !f.masked && f.rsv === 0));
    agent.send(8, Buffer.from([0x03, 0xe8]));
    await agent.closed;
    await waitFor("onClose", () => entry.stats !== undefined);
    assert.equal(agent.reader.close()?.code, 1000);
    assert.match(entry.stats!.why, /^closed/);
    assert.ok(entry.stats!.bytesOut > 100_000 && entry.stats!.bytesIn > 100_000);
    assert.deepEqual(entry.findings, []);
  });

  test("a secret split over two fragments is refused with 1008; the upstream gets none", async () => {
    const { agent, conn, entry } = await open();
    agent.send(1, "here it is: " + TOKEN.slice(0, 25), { fin: false });
    await new Promise((r) => setTimeout(r, 50));
    agent.send(0, TOKEN.slice(25) + " thanks");
    await agent.closed;
    await waitFor("the upstream's close", () => conn.closed);
    const close = agent.reader.close();
    assert.equal(close?.code, 1008);
    assert.match(close?.reason ?? "", /^bot-bottle: refused: .*ANTHROPIC_API_KEY/);
    assert.ok(!close?.reason.includes(TOKEN.slice(13)));
    assert.deepEqual(conn.reader.messages(), [], "no message reached the upstream");
    const upstreamBytes = Buffer.concat(conn.reader.frames.map((f) => f.payload)).toString();
    assert.ok(!upstreamBytes.includes("sk-ant"), "not even the secret's prefix");
    assert.equal(conn.reader.close()?.code, 1008);
    assert.equal(entry.findings.length, 1);
    assert.equal(entry.findings[0]?.kind, "held-secret");
    await waitFor("onClose", () => entry.stats !== undefined);
    assert.match(entry.stats!.why, /refused/);
  });

  test("the upstream's echo of the real token reaches the agent as its placeholder", async () => {
    const { agent } = await open();
    agent.send(1, "send-token");
    await waitFor("the token", () => agent.reader.messages().length === 1);
    assert.deepEqual(agent.reader.messages(), [`token=${PLACEHOLDER};`]);
    assert.ok(!agent.reader.frames.some((f) => f.payload.toString().includes(TOKEN.slice(13))));
    agent.socket.destroy();
  });

  test("a compressed (RSV1) frame is refused with 1002", async () => {
    const { agent, conn } = await open();
    agent.socket.write(encode(1, Buffer.from([0xf2, 0x48, 0x05, 0x00]), { mask: true, rsv: 4 }));
    await agent.closed;
    assert.equal(agent.reader.close()?.code, 1002);
    assert.match(agent.reader.close()?.reason ?? "", /reserved bits/);
    await waitFor("the upstream's close", () => conn.closed);
    assert.deepEqual(conn.reader.messages(), []);
  });

  test("a frame claiming 2^63 bytes is refused with 1002", async () => {
    const { agent, conn } = await open();
    agent.socket.write(encode(2, "", { mask: true, claim: 1n << 63n }));
    await agent.closed;
    assert.equal(agent.reader.close()?.code, 1002);
    await waitFor("the upstream's close", () => conn.closed);
    assert.equal(conn.reader.close()?.code, 1002);
  });

  test("close() from the proxy closes both sides", async () => {
    const { agent, conn, entry } = await open();
    agent.send(1, "still here");
    await waitFor("the echo", () => agent.reader.messages().length === 1);
    entry.relay.close(1001, "the route was removed");
    await agent.closed;
    await waitFor("the upstream's close", () => conn.closed);
    assert.deepEqual(agent.reader.close(), {
      code: 1001,
      reason: "bot-bottle: the route was removed",
    });
    assert.equal(conn.reader.close()?.code, 1001);
    await waitFor("onClose", () => entry.stats !== undefined);
    assert.equal(entry.stats!.why, "the route was removed");
  });

  test("an upstream that negotiates permessage-deflate is refused", async () => {
    const before = proxied.length;
    const agent = await agentConnect(proxyPort, "/deflate");
    assert.equal(agent.status, "HTTP/1.1 502 Bad Gateway");
    assert.match(refusals.at(-1) ?? "", /extension/);
    assert.equal(proxied.length, before);
    agent.socket.destroy();
  });
});

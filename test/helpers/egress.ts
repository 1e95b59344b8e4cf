/**
 * In-process egress tests: a bottle CA and an upstream CA made per run with openssl, a fake HTTPS
 * upstream that records what it received, the real EgressProxy on a random loopback port, and a
 * client that goes through it the way curl does (CONNECT, then TLS trusting the bottle CA).
 */
import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import {
  Agent as HttpsAgent,
  createServer as createHttpsServer,
  request as httpsRequest,
  type Server,
} from "node:https";
import { isIP, type Socket } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { CertificateAuthority } from "../../src/sidecars/egress/certs.js";
import { createCa } from "../../src/state/bottle-state.js";

export interface Ca {
  cert: string;
  key: string;
  authority: CertificateAuthority;
}

export async function makeCa(dir: string, name: string): Promise<Ca> {
  await createCa(join(dir, name), name);
  const cert = await readFile(join(dir, name, "ca.crt"), "utf8");
  const key = await readFile(join(dir, name, "ca.key"), "utf8");
  return { cert, key, authority: new CertificateAuthority(cert, key) };
}

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  complete: boolean;
}

/** An HTTPS server for any name (leaves from its own CA), recording every request it gets. */
export class FakeUpstream {
  readonly received: Received[] = [];
  /** Whole text messages the upstream received over WebSockets. */
  readonly wsMessages: string[] = [];
  /** A Sec-WebSocket-Extensions value the upstream answers with (a server that ignores the offer). */
  wsExtension: string | undefined;
  server!: Server;
  port = 0;

  constructor(private readonly ca: Ca) {}

  async start(): Promise<void> {
    this.server = createHttpsServer({
      // Clients of an IP address send no server name: they get the 127.0.0.1 leaf.
      key: this.ca.authority.leafKey,
      cert: this.ca.authority.mint("127.0.0.1"),
      SNICallback: (name, cb) => cb(null, this.ca.authority.context(name)),
    });
    this.server.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      const entry: Received = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.alloc(0),
        complete: false,
      };
      this.received.push(entry);
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        entry.body = Buffer.concat(chunks);
        entry.complete = true;
        // Careless servers: they hand back the credential they were sent, in other spellings.
        const key = String(req.headers["x-api-key"] ?? "");
        if (req.url === "/echo/gzip") {
          res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" });
          res.end(gzipSync(`your key: ${key}`));
          return;
        }
        if (req.url === "/echo/status") {
          res.writeHead(200, `OK ${key}`, { "content-type": "text/plain" });
          res.end("ok");
          return;
        }
        if (req.url === "/echo/encoded") {
          res.writeHead(200, { "content-type": "application/json" });
          // JSON whose "escaped" string spells every character as a \uXXXX escape.
          const escaped = [...key]
            .map((c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"))
            .join("");
          const b64 = Buffer.from(key).toString("base64");
          const hex = Buffer.from(key).toString("hex");
          res.end(`{"b64":"${b64}","hex":"${hex}","escaped":"${escaped}"}`);
          return;
        }
        if (req.url?.startsWith("/bytes/")) {
          const n = Number(req.url.slice("/bytes/".length));
          res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n });
          res.end(Buffer.alloc(n, 0x61));
          return;
        }
        const body = JSON.stringify({
          method: req.method,
          url: req.url,
          headers: req.headers,
          bytes: entry.body.length,
        });
        res.writeHead(200, {
          "content-type": "application/json",
          "x-echo-auth": String(req.headers["x-api-key"] ?? ""),
        });
        res.end(body);
      });
    });
    this.server.on("upgrade", (req, socket: Socket) => {
      const key = String(req.headers["sec-websocket-key"] ?? "");
      const accept = createHash("sha1")
        .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
        .digest("base64");
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n${this.wsExtension ? `sec-websocket-extensions: ${this.wsExtension}\r\n` : ""}\r\n`,
      );
      // Echoes each text message back as "echo:<message>"; "token?" is answered with the
      // credential the request carried, as a careless server might.
      let buffered = Buffer.alloc(0);
      let message = "";
      socket.on("data", (d: Buffer) => {
        buffered = Buffer.concat([buffered, d]);
        for (let f = readFrame(buffered); f; f = readFrame(buffered)) {
          buffered = buffered.subarray(f.size);
          if (f.opcode === 8) return socket.end(wsFrame(f.payload, { opcode: 8 }));
          message += f.payload.toString("latin1");
          if (!f.fin) continue;
          this.wsMessages.push(message);
          const reply =
            message === "token?" ? String(req.headers["x-api-key"] ?? "") : `echo:${message}`;
          socket.write(wsFrame(Buffer.from(reply, "latin1")));
          message = "";
        }
      });
      socket.on("error", () => socket.destroy());
      this.received.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.alloc(0),
        complete: true,
      });
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as { port: number }).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export interface ProxyResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** CONNECT through the proxy; the socket when it answered 200, else its refusal. */
export function connectTunnel(
  proxyPort: number,
  authority: string,
): Promise<{ socket: Socket } | ProxyResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port: proxyPort,
      method: "CONNECT",
      path: authority,
      agent: false,
      headers: { host: authority },
    });
    req.on("connect", (res, socket: Socket, head: Buffer) => {
      if (res.statusCode === 200) return resolve({ socket });
      let body = head.toString();
      socket.on("data", (d: Buffer) => (body += d.toString()));
      socket.on("close", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body }),
      );
      socket.on("error", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

export function tlsOver(socket: Socket, servername: string, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // An IP address is never a server name (RFC 6066): name it as the host to verify instead.
    const name = isIP(servername) ? { host: servername } : { servername };
    const tls = tlsConnect({ socket, ...name, ca, ALPNProtocols: ["http/1.1"] }, () =>
      resolve(tls),
    );
    tls.on("error", reject);
  });
}

/** An agent that sends every request over one already-open TLS socket (keep-alive). */
export function socketAgent(tls: TLSSocket): HttpsAgent {
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
  (agent as unknown as { createConnection: () => TLSSocket }).createConnection = () => tls;
  return agent;
}

export interface Call {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The Host header; defaults to the CONNECT authority. */
  host?: string;
}

/** One HTTPS request through the proxy: CONNECT `authority`, TLS for `servername`, then `call`. */
export async function viaProxy(
  proxyPort: number,
  authority: string,
  ca: string,
  call: Call = {},
  servername = authority.replace(/:\d+$/, ""),
): Promise<ProxyResponse> {
  const tunnel = await connectTunnel(proxyPort, authority);
  if (!("socket" in tunnel)) return tunnel;
  const tls = await tlsOver(tunnel.socket, servername, ca);
  try {
    return await requestOver(socketAgent(tls), authority, call);
  } finally {
    tls.destroy();
  }
}

export function requestOver(
  agent: HttpsAgent,
  authority: string,
  call: Call,
): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        agent,
        method: call.method ?? "GET",
        path: call.path ?? "/",
        headers: { host: call.host ?? authority, ...call.headers },
      },
      (res) => {
        let body = "";
        res.setEncoding("latin1");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(call.body);
  });
}

/** One WebSocket frame (RFC 6455), masked when a client sends it; small test payloads only. */
export function wsFrame(
  payload: Buffer | string,
  options: { opcode?: number; fin?: boolean; mask?: boolean; rsv1?: boolean } = {},
): Buffer {
  const data = Buffer.from(payload);
  const { opcode = 1, fin = true, mask = false, rsv1 = false } = options;
  const len = data.length < 126 ? [data.length] : [126, data.length >> 8, data.length & 255];
  const head = Buffer.from([(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode, ...len]);
  if (!mask) return Buffer.concat([head, data]);
  head[1] = (head[1] ?? 0) | 0x80;
  const key = randomBytes(4);
  return Buffer.concat([head, key, data.map((b, i) => b ^ (key[i % 4] ?? 0))]);
}

/** The first whole frame in `buf` (unmasked), or undefined until it has all arrived. */
export function readFrame(
  buf: Buffer,
): { opcode: number; fin: boolean; payload: Buffer; size: number } | undefined {
  if (buf.length < 2) return undefined;
  const b0 = buf[0] ?? 0;
  const b1 = buf[1] ?? 0;
  let len = b1 & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const masked = (b1 & 0x80) !== 0;
  const key = masked ? buf.subarray(at, at + 4) : undefined;
  if (masked) at += 4;
  if (buf.length < at + len) return undefined;
  const raw = buf.subarray(at, at + len);
  const payload = key ? Buffer.from(raw.map((b, i) => b ^ (key[i % 4] ?? 0))) : Buffer.from(raw);
  return { opcode: b0 & 0x0f, fin: (b0 & 0x80) !== 0, payload, size: at + len };
}

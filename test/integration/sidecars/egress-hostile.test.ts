/**
 * The egress proxy against an agent that attacks it: smuggling, upgrades, its own credentials,
 * secrets spelled into host names, slow and silent connections, reflection past the redactor,
 * and secrets in the logs. Every attack sits next to its allowed twin and asserts the specific
 * refusal, and that nothing of it reached the upstream.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import type { TLSSocket } from "node:tls";
import type { AuditRecord, EgressConfig, RouteRule } from "../../../src/shared/egress-config.js";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { EgressProxy } from "../../../src/sidecars/egress/proxy.js";
import { WITHHELD } from "../../../src/sidecars/egress/audit.js";
import {
  connectTunnel,
  FakeUpstream,
  makeCa,
  readFrame,
  tlsOver,
  viaProxy,
  wsFrame,
  type Ca,
} from "../../helpers/egress.js";

const SLUG = "probe-hostile1";
const TOKEN = "sk-ant-api03-" + "Z9yXwV8uT7sR6qP5oN4mL3kJ2iH1gF0eD9cB8aZ7yX6wV5uT";
const PLACEHOLDER = placeholderFor(TOKEN, "ANTHROPIC_API_KEY", SLUG);
const HANDSHAKE_MS = 400;

describe("the egress proxy against a hostile agent, in process", () => {
  let dir: string;
  let bottleCa: Ca;
  let upstreamCa: Ca;
  let upstream: FakeUpstream;
  let proxy: EgressProxy;
  let port: number;
  let audit: AuditRecord[];
  let logged: string[];
  let lookups: string[];
  let api: string;

  const routes = (): RouteRule[] => [
    {
      host: "api.example.test",
      port: upstream.port,
      tlsPassthrough: false,
      allowIpLiteral: false,
      auth: { header: "x-api-key", tokenEnv: "ANTHROPIC_API_KEY" },
    },
    {
      host: "open.example.test",
      port: upstream.port,
      tlsPassthrough: false,
      allowIpLiteral: false,
    },
    { host: "*.wild.example.test", port: 443, tlsPassthrough: true, allowIpLiteral: false },
    {
      host: "pinned.example.test",
      port: upstream.port,
      tlsPassthrough: true,
      allowIpLiteral: false,
    },
  ];

  const config = (extra: Partial<EgressConfig> = {}): EgressConfig => ({
    slug: SLUG,
    generation: 1,
    secretEnv: ["ANTHROPIC_API_KEY"],
    routes: routes(),
    extraHosts: {
      "api.example.test": "127.0.0.1",
      "open.example.test": "127.0.0.1",
      "pinned.example.test": "127.0.0.1",
    },
    ...extra,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-hostile-"));
    [bottleCa, upstreamCa] = await Promise.all([makeCa(dir, "bottle"), makeCa(dir, "upstream")]);
    upstream = new FakeUpstream(upstreamCa);
    await upstream.start();
    audit = [];
    logged = [];
    lookups = [];
    proxy = new EgressProxy({
      config: config(),
      trustCa: upstreamCa.cert,
      ca: bottleCa.authority,
      secrets: { ANTHROPIC_API_KEY: TOKEN },
      audit: (r) => audit.push(r),
      log: (event, message, fields) => logged.push(JSON.stringify({ event, message, ...fields })),
      lookup: (host) => {
        lookups.push(host);
        return Promise.reject(Object.assign(new Error("not found"), { code: "ENOTFOUND" }));
      },
      limits: { handshakeMs: HANDSHAKE_MS, dnsCacheEntries: 4 },
    });
    port = await proxy.listen(0, "127.0.0.1");
    api = `api.example.test:${upstream.port}`;
  });

  beforeEach(() => {
    upstream.received.length = 0;
    upstream.wsMessages.length = 0;
    upstream.wsExtension = undefined;
    audit.length = 0;
    logged.length = 0;
    lookups.length = 0;
  });

  after(async () => {
    await proxy.close();
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A decrypted tunnel to `authority`, as the agent's TLS client sees it. */
  async function tunnelTo(authority = api): Promise<TLSSocket> {
    const t = await connectTunnel(port, authority);
    assert.ok("socket" in t, "the tunnel opens");
    return tlsOver(t.socket, authority.replace(/:\d+$/, ""), bottleCa.cert);
  }

  /** Raw bytes over a fresh tunnel; everything that comes back until the proxy closes it. */
  async function raw(bytes: string, authority = api): Promise<string> {
    const tls = await tunnelTo(authority);
    return new Promise((resolve) => {
      let out = "";
      tls.on("data", (d: Buffer) => (out += d.toString("latin1")));
      tls.on("close", () => resolve(out));
      tls.on("error", () => resolve(out));
      tls.write(bytes);
      setTimeout(() => tls.end(), 1500);
    });
  }

  const refusal = (reply: string) => /x-bot-bottle-refusal: ([a-z-]+)/i.exec(reply)?.[1];
  const statuses = (reply: string) => [...reply.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);

  describe("request smuggling", () => {
    test("a keep-alive GET and a POST with a body both arrive, framed as sent", async () => {
      const reply = await raw(
        `GET /first HTTP/1.1\r\nHost: ${api}\r\n\r\n` +
          `POST /second HTTP/1.1\r\nHost: ${api}\r\nContent-Length: 5\r\n\r\nhello` +
          `GET /third HTTP/1.1\r\nHost: ${api}\r\nConnection: close\r\n\r\n`,
      );
      assert.deepEqual(statuses(reply), ["200", "200", "200"]);
      assert.deepEqual(
        upstream.received.map((r) => [r.method, r.url, r.body.toString()]),
        [
          ["GET", "/first", ""],
          ["POST", "/second", "hello"],
          ["GET", "/third", ""],
        ],
      );
    });

    test("Connection may not remove Content-Length: the smuggled request never reaches the upstream", async () => {
      const smuggled = `POST /admin HTTP/1.1\r\nHost: ${api}\r\nContent-Length: 0\r\n\r\n`;
      const reply = await raw(
        `GET /ok HTTP/1.1\r\nHost: ${api}\r\nConnection: content-length\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      );
      assert.equal(refusal(reply), "ambiguous-framing");
      assert.deepEqual(upstream.received, [], "neither the GET nor the smuggled POST arrived");
      for (const name of ["host", "transfer-encoding", "authorization", "cookie"]) {
        const r = await raw(`GET /ok HTTP/1.1\r\nHost: ${api}\r\nConnection: ${name}\r\n\r\n`);
        assert.equal(refusal(r), "ambiguous-framing", name);
      }
      assert.deepEqual(upstream.received, []);
    });

    test("a body on GET, HEAD, DELETE or OPTIONS is refused, never sent unframed", async () => {
      for (const method of ["GET", "HEAD", "DELETE", "OPTIONS"]) {
        const reply = await raw(
          `${method} /x HTTP/1.1\r\nHost: ${api}\r\nContent-Length: 5\r\n\r\nGET /`,
        );
        assert.equal(refusal(reply), "body-not-allowed", method);
        const chunked = await raw(
          `${method} /x HTTP/1.1\r\nHost: ${api}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\n`,
        );
        assert.equal(refusal(chunked), "body-not-allowed", `${method} chunked`);
      }
      assert.deepEqual(upstream.received, []);
      const twin = await raw(
        `DELETE /x HTTP/1.1\r\nHost: ${api}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      assert.deepEqual(statuses(twin), ["200"], "a DELETE without a body goes through");
    });

    test("a chunked body goes upstream re-framed by the proxy; gzip under chunked is refused", async () => {
      const ok = await raw(
        `POST /c HTTP/1.1\r\nHost: ${api}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n`,
      );
      assert.deepEqual(statuses(ok), ["200"]);
      assert.equal(upstream.received[0]?.body.toString(), "abcde");
      assert.equal(upstream.received[0]?.headers["transfer-encoding"], "chunked");
      upstream.received.length = 0;
      const gz = await raw(
        `POST /c HTTP/1.1\r\nHost: ${api}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      );
      assert.ok(["encoded-body", "bad-request"].includes(refusal(gz) ?? ""), gz);
      assert.deepEqual(upstream.received, []);
    });

    test("nothing pipelined behind a refused request is read: not a request, not an upgrade", async () => {
      const twin = await raw(
        `GET /a HTTP/1.1\r\nHost: ${api}\r\n\r\nGET /b HTTP/1.1\r\nHost: ${api}\r\nConnection: close\r\n\r\n`,
      );
      assert.deepEqual(statuses(twin), ["200", "200"], "two pipelined requests are both served");
      upstream.received.length = 0;
      for (const behind of [
        `POST /after HTTP/1.1\r\nHost: ${api}\r\nContent-Length: 2\r\n\r\nhi`,
        `GET /ws HTTP/1.1\r\nHost: ${api}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ]) {
        const reply = await raw(
          `GET /x HTTP/1.1\r\nHost: ${api}\r\nContent-Length: 3\r\n\r\nabc` + behind,
        );
        assert.deepEqual(statuses(reply), ["403"]);
        assert.equal(refusal(reply), "body-not-allowed");
      }
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(upstream.received, [], "nothing behind a refusal reached the upstream");
      assert.ok(audit.some((a) => a.tag === "after-close"));
    });

    test("two Host headers, or a Host that differs by spelling, are refused", async () => {
      const two = await raw(`GET /x HTTP/1.1\r\nHost: ${api}\r\nHost: evil.example.test\r\n\r\n`);
      assert.equal(refusal(two), "ambiguous-framing");
      assert.deepEqual(upstream.received, []);
    });

    test("the upstream sees the checked Host, not the agent's spelling of it", async () => {
      const reply = await raw(
        `GET /h HTTP/1.1\r\nHost: API.Example.Test.:${upstream.port}\r\nConnection: close\r\n\r\n`,
      );
      assert.deepEqual(statuses(reply), ["200"]);
      assert.equal(upstream.received[0]?.headers.host, api);
    });
  });

  describe("the agent's own credentials", () => {
    test("on a credential route, only the injected key goes upstream; elsewhere the agent's cookie does", async () => {
      const open = await viaProxy(port, `open.example.test:${upstream.port}`, bottleCa.cert, {
        path: "/o",
        headers: { cookie: "session=abc", authorization: "Basic dXNlcjpwYXNz" },
      });
      assert.equal(open.status, 200);
      assert.equal(upstream.received[0]?.headers.cookie, "session=abc");
      upstream.received.length = 0;
      const res = await viaProxy(port, api, bottleCa.cert, {
        path: "/v1/m",
        headers: {
          "x-api-key": PLACEHOLDER,
          cookie: "session=abc",
          authorization: "Bearer agent-brought-this",
          "proxy-authorization": "Basic eDp5",
        },
      });
      assert.equal(res.status, 200);
      const seen = upstream.received[0]?.headers ?? {};
      assert.equal(seen["x-api-key"], TOKEN);
      assert.equal(seen.cookie, undefined);
      assert.equal(seen.authorization, undefined);
      assert.equal(seen["proxy-authorization"], undefined);
    });
  });

  describe("upgrades", () => {
    /** Opens a WebSocket through the tunnel; resolves with the socket once the 101 is in. */
    async function openWs(
      authority = api,
      extraHead = "",
    ): Promise<{
      tls: TLSSocket;
      head: string;
      frames: () => Promise<{ opcode: number; text: string }>;
    }> {
      const tls = await tunnelTo(authority);
      let buf = Buffer.alloc(0);
      let head = "";
      const waiters: (() => void)[] = [];
      tls.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        waiters.splice(0).forEach((w) => w());
      });
      tls.on("close", () => waiters.splice(0).forEach((w) => w()));
      // The credential route's placeholder goes to its own host only.
      const key = authority === api ? `x-api-key: ${PLACEHOLDER}\r\n` : "";
      tls.write(
        `GET /ws HTTP/1.1\r\nHost: ${authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n${key}${extraHead}\r\n`,
      );
      while (buf.indexOf("\r\n\r\n") < 0 && !tls.destroyed)
        await new Promise<void>((r) => waiters.push(r));
      const end = buf.indexOf("\r\n\r\n");
      head = buf.subarray(0, end).toString("latin1");
      buf = buf.subarray(end + 4);
      // One whole message (fragments gathered), or a close frame.
      const frames = async () => {
        let text = "";
        for (;;) {
          const f = readFrame(buf);
          if (f) {
            buf = buf.subarray(f.size);
            if (f.opcode === 8) return { opcode: 8, text: f.payload.subarray(2).toString() };
            text += f.payload.toString("latin1");
            if (f.fin) return { opcode: 1, text };
            continue;
          }
          if (tls.destroyed) return { opcode: -1, text };
          await new Promise<void>((r) => waiters.push(r));
        }
      };
      return { tls, head, frames };
    }

    test("messages go both ways; the offer of compression never reaches the upstream", async () => {
      const ws = await openWs();
      assert.match(ws.head, /^HTTP\/1\.1 101/);
      ws.tls.write(wsFrame("hello", { mask: true }));
      assert.deepEqual(await ws.frames(), { opcode: 1, text: "echo:hello" });
      ws.tls.destroy();
      assert.deepEqual(upstream.wsMessages, ["hello"]);
      assert.equal(upstream.received[0]?.headers["sec-websocket-extensions"], undefined);
    });

    test("a secret split over two fragments closes the socket (1008) before any of it leaves", async () => {
      const ws = await openWs();
      ws.tls.write(wsFrame("fine", { mask: true }));
      assert.equal((await ws.frames()).text, "echo:fine");
      const half = Math.floor(TOKEN.length / 2);
      ws.tls.write(wsFrame(`key=${TOKEN.slice(0, half)}`, { mask: true, fin: false }));
      ws.tls.write(wsFrame(TOKEN.slice(half), { mask: true, opcode: 0 }));
      const closed = await ws.frames();
      assert.equal(closed.opcode, 8);
      assert.match(closed.text, /secret|ANTHROPIC_API_KEY/);
      ws.tls.destroy();
      assert.deepEqual(upstream.wsMessages, ["fine"]);
      assert.ok(audit.some((a) => a.kind === "websocket" && a.tag === "secret-detected"));
    });

    test("an upstream that echoes the credential over the socket hands back the placeholder", async () => {
      const ws = await openWs();
      ws.tls.write(wsFrame("token?", { mask: true }));
      const reply = await ws.frames();
      ws.tls.destroy();
      assert.equal(reply.text, PLACEHOLDER);
      assert.ok(!reply.text.includes(TOKEN));
    });

    test("an upstream that negotiates compression anyway is refused", async () => {
      upstream.wsExtension = "permessage-deflate";
      const ws = await openWs();
      ws.tls.destroy();
      assert.match(ws.head, /^HTTP\/1\.1 502/);
      assert.equal(refusal(ws.head), "upgrade-refused");
    });

    test("any other upgrade (h2c) is refused with a tag; the same request without it goes through", async () => {
      const twin = await raw(`GET /plain HTTP/1.1\r\nHost: ${api}\r\nConnection: close\r\n\r\n`);
      assert.deepEqual(statuses(twin), ["200"]);
      upstream.received.length = 0;
      const h2c = await raw(
        `GET /plain HTTP/1.1\r\nHost: ${api}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
      );
      assert.equal(refusal(h2c), "upgrade-refused");
      assert.deepEqual(upstream.received, []);
    });

    test("removing a route closes its open WebSocket and passthrough tunnels; others stay up", async () => {
      const ws = await openWs(`open.example.test:${upstream.port}`);
      ws.tls.write(wsFrame("before", { mask: true }));
      assert.equal((await ws.frames()).text, "echo:before");
      const kept = await openWs();
      const pinned = await connectTunnel(port, `pinned.example.test:${upstream.port}`);
      assert.ok("socket" in pinned);
      const pinnedTls = await tlsOver(pinned.socket, "pinned.example.test", upstreamCa.cert);
      const pinnedClosed = new Promise<void>((r) => pinnedTls.once("close", () => r()));
      const closed = proxy.reload(
        config({
          generation: 2,
          routes: routes().filter(
            (r) => r.host !== "open.example.test" && r.host !== "pinned.example.test",
          ),
        }),
        upstreamCa.cert,
      );
      assert.equal(closed, 2, "the WebSocket and the passthrough");
      const gone = await ws.frames();
      assert.equal(gone.opcode, 8, "the WebSocket is closed");
      assert.match(gone.text, /route was removed/);
      await pinnedClosed;
      kept.tls.write(wsFrame("still", { mask: true }));
      assert.equal((await kept.frames()).text, "echo:still");
      kept.tls.destroy();
      ws.tls.destroy();
      proxy.reload(config(), upstreamCa.cert);
      assert.ok(audit.some((a) => a.tag === "route-removed"));
    });
  });

  describe("host names are scanned before any lookup", () => {
    test("a secret spelled into a wildcard host name is refused and never looked up", async () => {
      const twin = await connectTunnel(port, "cdn.wild.example.test:443");
      assert.ok("socket" in twin);
      const hello = await tlsOver(twin.socket, "cdn.wild.example.test", bottleCa.cert).catch(
        (e: Error) => e,
      );
      assert.ok(hello instanceof Error, "the twin is looked up (and, here, does not resolve)");
      assert.deepEqual(lookups, ["cdn.wild.example.test"]);
      lookups.length = 0;
      const hex = Buffer.from(TOKEN).toString("hex");
      const labels = hex.match(/.{1,60}/g) ?? [];
      for (const host of [
        `${labels.join(".")}.wild.example.test`,
        `${TOKEN.toLowerCase().replaceAll("_", "-")}.wild.example.test`,
      ]) {
        const t = await connectTunnel(port, `${host}:443`);
        if ("socket" in t) {
          await tlsOver(t.socket, host, bottleCa.cert).catch(() => undefined);
          t.socket.destroy();
        }
      }
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(lookups, [], "no secret-bearing name was looked up");
      assert.ok(audit.filter((a) => a.tag === "secret-detected").length >= 2);
      assert.ok(!JSON.stringify(audit).includes(hex.slice(0, 40)));
    });

    test("the DNS cache stays within its bound", async () => {
      const { Resolver } = await import("../../../src/sidecars/egress/resolve.js");
      const { SecretScanner } = await import("../../../src/sidecars/dlp.js");
      const r = new Resolver(() => Promise.resolve([{ address: "93.184.215.14", family: 4 }]), {
        dnsCacheEntries: 3,
        dnsTtlMs: 60_000,
      });
      const scanner = new SecretScanner([], []);
      for (let i = 0; i < 50; i++)
        await r.resolve({ host: `h${i}.example.com`, port: 443, ip: false }, {}, scanner, {});
      assert.equal(r.size, 3);
    });
  });

  describe("slow and silent connections", () => {
    /** Resolves when the proxy has closed `socket` (whatever it said first is read and dropped). */
    const closedWithin = (
      socket: { once: (e: "close", f: () => void) => void; resume: () => void },
      ms: number,
    ) =>
      new Promise<number>((resolve, reject) => {
        socket.resume();
        const t0 = performance.now();
        const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
        socket.once("close", () => {
          clearTimeout(timer);
          resolve(performance.now() - t0);
        });
      });

    test("a tunnel that never sends a ClientHello is closed; one that does is served", async () => {
      const ok = await viaProxy(port, api, bottleCa.cert, { path: "/quick" });
      assert.equal(ok.status, 200);
      const t = await connectTunnel(port, api);
      assert.ok("socket" in t);
      await closedWithin(t.socket, HANDSHAKE_MS + 1500);
      assert.ok(audit.some((a) => a.tag === "handshake-timeout"));
    });

    test("a half-sent request head inside TLS is closed", async () => {
      const tls = await tunnelTo();
      tls.write(`GET /slow HTTP/1.1\r\nHost: ${api}\r\nX-Drip: a`);
      await closedWithin(tls, HANDSHAKE_MS + 2500);
      assert.deepEqual(upstream.received, []);
    });

    test("connections past the cap are closed at once; those within it are served", async () => {
      const capped = new EgressProxy({
        config: config(),
        trustCa: upstreamCa.cert,
        ca: bottleCa.authority,
        secrets: { ANTHROPIC_API_KEY: TOKEN },
        audit: () => undefined,
        log: () => undefined,
        limits: { maxConnections: 2 },
      });
      const cappedPort = await capped.listen(0, "127.0.0.1");
      try {
        const held = [netConnect(cappedPort, "127.0.0.1"), netConnect(cappedPort, "127.0.0.1")];
        await Promise.all(held.map((s) => new Promise((r) => s.once("connect", r))));
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(capped.connections, 2);
        const third = netConnect(cappedPort, "127.0.0.1");
        await closedWithin(third, 2000);
        held[0]?.destroy();
        await new Promise((r) => setTimeout(r, 50));
        const res = await viaProxy(cappedPort, api, bottleCa.cert, {
          path: "/within",
          headers: { "x-api-key": PLACEHOLDER },
        });
        assert.equal(res.status, 200, "a connection within the cap is served");
        held[1]?.destroy();
      } finally {
        await capped.close();
      }
    });

    test("a connection that never sends a request line is closed", async () => {
      const s = netConnect(port, "127.0.0.1");
      await new Promise((r) => s.once("connect", r));
      s.write("CONN");
      await closedWithin(s, HANDSHAKE_MS + 2500);
    });
  });

  describe("reflection past the redactor", () => {
    test("a gzip reply on a credential route is decoded and redacted", async () => {
      const res = await viaProxy(port, api, bottleCa.cert, {
        path: "/echo/gzip",
        headers: { "x-api-key": PLACEHOLDER, "accept-encoding": "gzip" },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-encoding"], undefined);
      assert.equal(res.body, `your key: ${PLACEHOLDER}`);
    });

    test("the status line, base64, hex and \\u-escaped echoes come back as the placeholder", async () => {
      const status = await new Promise<string>((resolve, reject) => {
        void tunnelTo().then((tls) => {
          let out = "";
          tls.on("data", (d: Buffer) => (out += d.toString("latin1")));
          tls.on("close", () => resolve(out));
          tls.on("error", reject);
          tls.write(
            `GET /echo/status HTTP/1.1\r\nHost: ${api}\r\nx-api-key: ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`,
          );
        });
      });
      assert.match(status, new RegExp(`^HTTP/1\\.1 200 OK ${PLACEHOLDER}\\r\\n`));
      const res = await viaProxy(port, api, bottleCa.cert, {
        path: "/echo/encoded",
        headers: { "x-api-key": PLACEHOLDER },
      });
      const body = JSON.parse(res.body) as { b64: string; hex: string; escaped: string };
      assert.equal(Buffer.from(body.b64, "base64").toString(), PLACEHOLDER);
      assert.equal(Buffer.from(body.hex, "hex").toString(), PLACEHOLDER);
      assert.equal(body.escaped, PLACEHOLDER, "JSON.parse decodes the escapes");
      for (const form of [TOKEN, Buffer.from(TOKEN).toString("hex")])
        assert.ok(!res.body.includes(form) && !status.includes(form));
    });
  });

  describe("secrets never reach the logs", () => {
    test("a refused path, host or URL that carries a secret is withheld from the audit and the log", async () => {
      const res = await viaProxy(port, api, bottleCa.cert, {
        path: `/v1/${TOKEN}/x`,
        headers: { "x-api-key": PLACEHOLDER },
      });
      assert.equal(res.headers["x-bot-bottle-refusal"], "secret-detected");
      const absolute = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: "127.0.0.1",
            port,
            path: `http://user:${TOKEN}@evil.example.test/`,
            headers: { host: "evil.example.test" },
          },
          (r) => {
            r.resume();
            resolve(r.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
      assert.ok(absolute >= 400);
      const refused = await connectTunnel(
        port,
        `${TOKEN.toLowerCase().replaceAll("_", "-")}.not-declared.test:443`,
      );
      assert.ok("status" in refused && refused.status === 403);
      const everything = JSON.stringify(audit) + logged.join("\n");
      assert.ok(audit.length >= 3 && logged.length >= 3, "the refusals were recorded");
      for (const form of [TOKEN, TOKEN.slice(13), TOKEN.toLowerCase().slice(13), "user:"])
        assert.ok(!everything.includes(form), `no "${form.slice(0, 8)}…" in the logs`);
      assert.ok(audit.some((a) => a.path === WITHHELD || a.host === WITHHELD));
    });
  });
});

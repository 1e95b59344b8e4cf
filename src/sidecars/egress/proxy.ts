/**
 * The egress proxy: the agent's only way out. A forward proxy (CONNECT and absolute-form HTTP/1.1,
 * WebSocket upgrades included) that decrypts TLS with the bottle's CA, lets a request through only
 * when a declared route allows it, sets the route's real credential in place of the agent's
 * placeholder, scans what the agent sends for secrets, refuses everything else recognisably, and
 * records one audit line per decision. Routes reload atomically; open connections stay up, except
 * those whose route is gone.
 *
 * This file holds the servers, the rules and the limits; the parts live beside it, each with one
 * entry point: agent-key.ts (the key every request entering the proxy carries, where the port is
 * reachable by more than the agent), admission.ts (every check before a byte leaves; framing.ts for request framing;
 * turns.ts, one request at a time per connection), forward.ts (HTTP), connect.ts (CONNECT:
 * intercept and passthrough), upgrade.ts (WebSocket: websocket.ts the relay, ws-frames.ts the
 * frames), audit.ts (refusals and the audit trail), resolve.ts (addresses), live.ts (long
 * connections).
 */
import { Agent as HttpAgent, createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createSecureContext, rootCertificates } from "node:tls";
import type { EgressConfig } from "../../shared/egress-config.js";
import { placeholderFor } from "../../shared/placeholders.js";
import { AgentKey } from "./agent-key.js";
import { pending, Recorder, type ScanSnapshot } from "./audit.js";
import { handleConnect } from "./connect.js";
import {
  DEFAULT_LIMITS,
  type EgressOptions,
  type Limits,
  type ProxyContext,
  type Rules,
} from "./context.js";
import { SecretScanner } from "../dlp.js";
import { forwardRequest } from "./forward.js";
import { Live } from "./live.js";
import { refuse, type Target } from "./policy.js";
import { Resolver, systemLookup } from "./resolve.js";
import { Turns } from "./turns.js";
import { handleUpgrade } from "./upgrade.js";
import { listenOn } from "../listen.js";

export type { EgressOptions, Lookup } from "./context.js";

export class EgressProxy implements ProxyContext {
  readonly server: Server;
  readonly inner: Server;
  readonly limits: Limits;
  readonly recorder: Recorder;
  readonly resolver: Resolver;
  readonly live = new Live();
  readonly tunnels = new WeakMap<Duplex, Target>();
  readonly hostSeen = new WeakMap<Duplex, string>();
  readonly turns = new Turns();
  readonly http = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  readonly agentKey: AgentKey | undefined;
  private current: Rules;
  private currentTrust: string | undefined;
  private open = 0;
  /** Token values a refresh replaced, oldest first. */
  private readonly retired: { name: string; value: string }[] = [];

  constructor(readonly options: EgressOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    // Fail closed: a config that asks for a key never runs without one.
    if (options.config.agentKeyEnv !== undefined && !options.agentKey)
      throw new Error(
        `the config names agentKeyEnv (${options.config.agentKeyEnv}) but no agent key was given`,
      );
    this.agentKey = options.agentKey ? new AgentKey(options.agentKey) : undefined;
    this.resolver = new Resolver(options.lookup ?? systemLookup, this.limits);
    this.current = this.compile(options.config, options.trustCa);
    this.scheduleLeaseEnd();
    // One snapshot per rules, not one per audit line: the recorder remembers verdicts by it.
    const snapshots = new WeakMap<Rules, ScanSnapshot>();
    this.recorder = new Recorder(
      options.audit,
      options.log,
      (socket) => this.turns.close(socket),
      () => {
        const rules = this.current;
        let snapshot = snapshots.get(rules);
        if (!snapshot) {
          snapshot = {
            scanner: rules.scanner,
            placeholders: new Set(rules.placeholders.keys()),
            secrets: options.secrets,
          };
          snapshots.set(rules, snapshot);
        }
        return snapshot;
      },
    );
    const serverOptions = {
      keepAlive: true,
      noDelay: true,
      // A request head must be complete within the handshake limit; bodies are bounded by the
      // idle limit on their socket instead, so a long upload is not cut off. Node checks the
      // deadline on a timer that runs whether or not anything is connected: every quarter of the
      // limit, a head late by at most a quarter is cut off, and an idle proxy wakes rarely.
      headersTimeout: this.limits.handshakeMs,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.ceil(this.limits.handshakeMs / 4),
    };
    this.server = createServer(serverOptions);
    this.inner = createServer(serverOptions);
    this.server.maxConnections = this.limits.maxConnections;
    // Node checks head deadlines only on servers that listen; the inner one never does (tunnels
    // are handed to it), so it starts that check the way listening would.
    this.inner.emit("listening");
    this.server.on("connection", (socket: Socket) => {
      socket.setTimeout(this.limits.idleMs, () => socket.destroy());
      this.open++;
      socket.once("close", () => this.open--);
    });
    this.server.on(
      "request",
      (req: IncomingMessage, res: ServerResponse) => void forwardRequest(this, req, res, undefined),
    );
    this.server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) =>
      handleConnect(this, req, socket, head),
    );
    this.server.on(
      "upgrade",
      (req: IncomingMessage, socket: Socket, head: Buffer) =>
        void handleUpgrade(this, req, socket, head, undefined),
    );
    this.inner.on(
      "request",
      (req: IncomingMessage, res: ServerResponse) =>
        void forwardRequest(this, req, res, this.tunnels.get(req.socket)),
    );
    this.inner.on(
      "upgrade",
      (req: IncomingMessage, socket: Socket, head: Buffer) =>
        void handleUpgrade(this, req, socket, head, this.tunnels.get(socket)),
    );
    for (const server of [this.server, this.inner])
      server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) =>
        this.onClientError(err, socket),
      );
  }

  get rules(): Rules {
    return this.current;
  }

  get config(): EgressConfig {
    return this.current.config;
  }

  /** Open agent connections (tunnels included). */
  get connections(): number {
    return this.open;
  }

  /**
   * Swaps in new routes: requests already under way finish under the old ones, and tunnels and
   * upgraded connections the new routes no longer allow are closed. Returns how many closed.
   * The agent key stays the one given at start, whatever `config.agentKeyEnv` now says; a config
   * that asks for a key the proxy was started without is refused (throws; nothing changes).
   */
  reload(config: EgressConfig, trustCa: string | undefined): number {
    if (config.agentKeyEnv !== undefined && this.agentKey === undefined)
      throw new Error(
        `the new config names agentKeyEnv (${config.agentKeyEnv}), but the proxy started without an agent key: restart the bottle to require one`,
      );
    const previous = this.current;
    this.current = this.compile(config, trustCa);
    this.resolver.clear();
    if (previous.https !== this.current.https) previous.https.destroy();
    this.scheduleLeaseEnd();
    return this.live.recheck(config);
  }

  private leaseTimer: NodeJS.Timeout | undefined;

  /**
   * At the next lease's end, tunnels and upgraded connections that only the ended route allowed
   * are closed, as a reload would close them; new requests stop matching it at that instant.
   */
  private scheduleLeaseEnd(): void {
    clearTimeout(this.leaseTimer);
    const now = Date.now();
    const next = Math.min(
      ...this.current.config.routes
        .map((r) => (r.expires ? Date.parse(r.expires) : Infinity))
        .filter((t) => t > now),
    );
    if (!Number.isFinite(next)) return;
    this.leaseTimer = setTimeout(
      () => {
        const closed = this.live.recheck(this.current.config);
        this.options.onLeaseEnd?.(closed);
        this.scheduleLeaseEnd();
      },
      Math.min(next - now + 5, 2 ** 31 - 1),
    );
    this.leaseTimer.unref();
  }

  rotate(values: Readonly<Record<string, string>>, expiresIn?: number): Rules {
    const { secrets } = this.options;
    for (const [name, value] of Object.entries(values)) {
      const old = secrets[name];
      if (old === value) continue;
      if (old) this.retired.push({ name, value: old });
      secrets[name] = value;
    }
    this.current = this.compile(this.current.config, this.currentTrust);
    this.options.onRotate?.(values, expiresIn);
    return this.current;
  }

  private compile(config: EgressConfig, trustCa: string | undefined): Rules {
    const { secrets, config: initial } = this.options;
    const placeholders = new Map<string, string>();
    const jwt = new Set(config.jwtEnv ?? []);
    const tokenNames = config.routes.flatMap((route) => [
      ...(route.auth ? [route.auth.tokenEnv] : []),
      ...(route.exchange
        ? [route.exchange.refreshEnv, ...Object.values(route.exchange.rotates)]
        : []),
    ]);
    for (const name of tokenNames) {
      const real = secrets[name];
      if (real)
        placeholders.set(name, placeholderFor(real, name, initial.slug, { jwt: jwt.has(name) }));
    }
    // Tokens a refresh replaced may still be valid upstream: they stay secrets, and a reply that
    // carries one still gets its placeholder.
    const retired = this.retired.map((r) => ({
      name: `${r.name} (before a refresh)`,
      value: r.value,
      placeholder: placeholderFor(r.value, r.name, initial.slug, { jwt: jwt.has(r.name) }),
    }));
    const scanner = new SecretScanner(
      [
        ...Object.entries(secrets).map(([name, value]) => ({ name, value })),
        ...retired.map(({ name, value }) => ({ name, value })),
      ],
      [...placeholders].map(([name, value]) => ({ name, value })),
    );
    const redactions = [
      ...[...placeholders].map(([name, placeholder]) => ({
        real: Buffer.from(secrets[name] ?? "", "latin1"),
        placeholder: Buffer.from(placeholder, "latin1"),
      })),
      ...retired.map((r) => ({
        real: Buffer.from(r.value, "latin1"),
        placeholder: Buffer.from(r.placeholder, "latin1"),
      })),
    ];
    const same = this.current as Rules | undefined;
    const keep = same !== undefined && trustCa === this.currentTrust;
    // One context for every upstream connection: passing `ca` instead would build a context per
    // connection and make the agent stringify every root certificate to key its pool.
    const upstreamTls = keep
      ? same.upstreamTls
      : createSecureContext({
          ca: trustCa ? [...rootCertificates, trustCa] : [...rootCertificates],
        });
    const https = keep
      ? same.https
      : new HttpsAgent({ keepAlive: true, maxSockets: 256, secureContext: upstreamTls });
    this.currentTrust = trustCa;
    return { config, https, upstreamTls, placeholders, scanner, redactions };
  }

  listen(port: number, host = "0.0.0.0"): Promise<number> {
    return listenOn(this.server, port, host);
  }

  close(): Promise<void> {
    clearTimeout(this.leaseTimer);
    this.live.closeAll("shutdown");
    this.current.https.destroy();
    this.http.destroy();
    this.server.closeAllConnections();
    this.inner.closeAllConnections();
    this.inner.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const framing = /CONTENT_LENGTH|TRANSFER_ENCODING|INVALID_CHUNK/.test(err.code ?? "");
    const p = pending(
      this.tunnels.has(socket) ? "https" : "http",
      "",
      this.tunnels.get(socket),
      "",
    );
    if (err.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    if (err.code === "ERR_HTTP_REQUEST_TIMEOUT" || err.code === "HPE_HEADER_OVERFLOW") {
      this.recorder.refuseSocket(
        socket,
        p,
        err.code === "HPE_HEADER_OVERFLOW"
          ? refuse("bad-request", "the request head is too large")
          : refuse(
              "headers-timeout",
              `the request head did not arrive within ${this.limits.handshakeMs} ms`,
            ),
        err.code === "HPE_HEADER_OVERFLOW" ? 431 : 408,
      );
      return;
    }
    this.recorder.refuseSocket(
      socket,
      p,
      framing
        ? refuse(
            "ambiguous-framing",
            "the request's length is ambiguous (Content-Length and Transfer-Encoding, or two Content-Lengths) — send one of them",
          )
        : refuse("bad-request", "the request is not valid HTTP/1.1"),
      400,
    );
  }
}

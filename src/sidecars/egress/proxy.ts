/**
 * The egress proxy: the agent's only way out. A forward proxy (CONNECT and absolute-form HTTP/1.1,
 * WebSocket upgrades included) that decrypts TLS with the bottle's CA, lets a request through only
 * when a declared route allows it, sets the route's real credential in place of the agent's
 * placeholder, scans URL, headers and body for secrets as they stream, refuses everything else
 * recognisably, and records one audit line per decision. Routes reload atomically; open
 * connections stay up.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { Agent as HttpAgent, createServer, request as httpRequest } from "node:http";
import type {
  IncomingHttpHeaders,
  IncomingMessage,
  OutgoingHttpHeaders,
  Server,
  ServerResponse,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { connect as netConnect, isIP, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createSecureContext, rootCertificates, TLSSocket, type SecureContext } from "node:tls";
import type { AuditRecord, EgressConfig, RouteRule } from "../../shared/egress-config.js";
import { isInternalAddress } from "../../shared/hosts.js";
import { placeholderFor } from "../../shared/placeholders.js";
import type { Logger } from "../log.js";
import type { CertificateAuthority } from "./certs.js";
import { Redactor, SecretScanner, type Finding } from "./dlp.js";
import {
  auditPath,
  decideConnect,
  decideRequest,
  parseAuthority,
  refuse,
  type Decision,
  type Refusal,
  type Target,
} from "./policy.js";
import { readSni } from "./sni.js";

export type Lookup = (host: string) => Promise<LookupAddress[]>;

export interface EgressOptions {
  config: EgressConfig;
  /** Extra CA certificates (PEM) trusted upstream, besides the system store. */
  trustCa?: string;
  ca: CertificateAuthority;
  /** The bundle's secrets by variable name: route tokens, the CA key. */
  secrets: Record<string, string>;
  audit: (record: AuditRecord) => void;
  log: Logger;
  /** Name resolution (tests pass their own); the default is the system resolver. */
  lookup?: Lookup;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
]);

/**
 * Bytes a body may queue toward a slower side before the faster one is paused: past a TLS
 * socket's 16 kB mark, so a transfer does not stall on every record.
 */
const BACKLOG = 1 << 20;

const systemLookup: Lookup = (host) =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );

class FindingError extends Error {
  constructor(readonly finding: Finding) {
    super(finding.description);
  }
}

/** Everything a reload swaps at once. */
interface Rules {
  config: EgressConfig;
  https: HttpsAgent;
  /** Verifies upstream TLS against the system store plus egress.trust_ca. */
  upstreamTls: SecureContext;
  /** Token variable -> its placeholder, for the variables this bundle holds. */
  placeholders: Map<string, string>;
  scanner: SecretScanner;
  redactions: { real: Buffer; placeholder: Buffer }[];
}

function pending(
  kind: AuditRecord["kind"],
  method: string,
  target: Target | undefined,
  path: string,
): Pending {
  return { kind, method, target, path, started: performance.now(), bytesOut: 0, bytesIn: 0 };
}

interface Pending {
  kind: AuditRecord["kind"];
  method: string;
  target: Target | undefined;
  path: string;
  started: number;
  bytesOut: number;
  bytesIn: number;
}

export class EgressProxy {
  readonly server: Server;
  private readonly inner: Server;
  private rules: Rules;
  private readonly tunnels = new WeakMap<Duplex, Target>();
  /** The Host header last accepted on each tunnel (the same one comes back on every request). */
  private readonly hostSeen = new WeakMap<Duplex, string>();
  private readonly dnsCache = new Map<string, { at: number; addresses: LookupAddress[] }>();
  private readonly lookup: Lookup;
  private readonly http = new HttpAgent({ keepAlive: true, maxSockets: 256 });

  constructor(private readonly options: EgressOptions) {
    this.lookup = options.lookup ?? systemLookup;
    this.rules = this.compile(options.config, options.trustCa);
    this.server = createServer({ keepAlive: true, noDelay: true });
    this.inner = createServer({ keepAlive: true, noDelay: true });
    this.server.on(
      "request",
      (req: IncomingMessage, res: ServerResponse) => void this.onRequest(req, res, undefined),
    );
    this.server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.onConnect(req, socket, head),
    );
    this.server.on(
      "upgrade",
      (req: IncomingMessage, socket: Socket, head: Buffer) =>
        void this.onUpgrade(req, socket, head, undefined),
    );
    this.inner.on(
      "request",
      (req: IncomingMessage, res: ServerResponse) =>
        void this.onRequest(req, res, this.tunnels.get(req.socket)),
    );
    this.inner.on(
      "upgrade",
      (req: IncomingMessage, socket: Socket, head: Buffer) =>
        void this.onUpgrade(req, socket, head, this.tunnels.get(socket)),
    );
    for (const server of [this.server, this.inner])
      server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) =>
        this.onClientError(err, socket),
      );
  }

  /** Swaps in new routes; requests already under way finish under the old ones. */
  reload(config: EgressConfig, trustCa: string | undefined): void {
    const previous = this.rules;
    this.rules = this.compile(config, trustCa);
    this.dnsCache.clear();
    if (previous.https !== this.rules.https) previous.https.destroy();
  }

  get config(): EgressConfig {
    return this.rules.config;
  }

  private compile(config: EgressConfig, trustCa: string | undefined): Rules {
    const { secrets, config: initial } = this.options;
    const placeholders = new Map<string, string>();
    for (const route of config.routes) {
      const name = route.auth?.tokenEnv;
      const real = name === undefined ? undefined : secrets[name];
      if (name !== undefined && real)
        placeholders.set(name, placeholderFor(real, name, initial.slug));
    }
    const scanner = new SecretScanner(
      Object.entries(secrets).map(([name, value]) => ({ name, value })),
      [...placeholders].map(([name, value]) => ({ name, value })),
    );
    const redactions = [...placeholders].map(([name, placeholder]) => ({
      real: Buffer.from(secrets[name] ?? "", "latin1"),
      placeholder: Buffer.from(placeholder, "latin1"),
    }));
    const same = this.rules as Rules | undefined;
    // One context for every upstream connection: passing `ca` instead would build a context per
    // connection and make the agent stringify every root certificate to key its pool.
    const upstreamTls =
      same && trustCa === this.currentTrust
        ? same.upstreamTls
        : createSecureContext({
            ca: trustCa ? [...rootCertificates, trustCa] : [...rootCertificates],
          });
    const https =
      same && trustCa === this.currentTrust
        ? same.https
        : new HttpsAgent({ keepAlive: true, maxSockets: 256, secureContext: upstreamTls });
    this.currentTrust = trustCa;
    return { config, https, upstreamTls, placeholders, scanner, redactions };
  }
  private currentTrust: string | undefined;

  listen(port: number, host = "0.0.0.0"): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        const address = this.server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  close(): Promise<void> {
    this.rules.https.destroy();
    this.http.destroy();
    this.server.closeAllConnections();
    this.inner.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  // --- decisions and records ---------------------------------------------------------

  private record(
    p: Pending,
    decision: "allow" | "refuse",
    tag: string,
    extra: Partial<AuditRecord> = {},
  ): void {
    const entry: AuditRecord = {
      time: new Date().toISOString(),
      kind: p.kind,
      method: p.method,
      host: p.target?.host ?? "",
      port: p.target?.port ?? 0,
      path: auditPath(p.path),
      decision,
      tag,
      ...extra,
      bytesOut: p.bytesOut,
      bytesIn: p.bytesIn,
      ms: Math.round((performance.now() - p.started) * 10) / 10,
    };
    this.options.audit(entry);
    if (decision === "refuse")
      this.options.log("refuse", entry.reason ?? tag, {
        tag,
        method: entry.method,
        host: entry.host,
        path: entry.path,
      });
  }

  private refuseResponse(res: ServerResponse, p: Pending, r: Refusal, status = 403): void {
    this.record(p, "refuse", r.tag, {
      reason: r.reason,
      status,
      ...(r.route ? { route: r.route.host } : {}),
    });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = r.reason + "\n";
    res.writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "x-bot-bottle-refusal": r.tag,
      "x-bot-bottle-reason": headerSafe(r.reason),
      ...(res.req.complete ? {} : { connection: "close" }),
    });
    res.end(body);
  }

  private refuseSocket(socket: Duplex, p: Pending, r: Refusal, status = 403): void {
    this.record(p, "refuse", r.tag, {
      reason: r.reason,
      status,
      ...(r.route ? { route: r.route.host } : {}),
    });
    const body = r.reason + "\n";
    const text = status === 403 ? "Forbidden" : status === 400 ? "Bad Request" : "Bad Gateway";
    if (socket.writable)
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Bot-Bottle-Refusal: ${r.tag}\r\nX-Bot-Bottle-Reason: ${headerSafe(r.reason)}\r\nConnection: close\r\n\r\n${body}`,
      );
    else socket.destroy();
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
    this.refuseSocket(
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

  /** Every check that applies to a decrypted or plain request before it may leave. */
  private check(req: IncomingMessage, tunnel: Target | undefined, p: Pending): Decision {
    let target: Target | undefined = tunnel;
    let path = req.url ?? "";
    if (!tunnel) {
      if (!/^http:\/\//i.test(path))
        return /^[a-z]+:\/\//i.test(path)
          ? refuse(
              "bad-request",
              "only http:// URLs can be sent to the proxy as requests; use CONNECT (HTTPS_PROXY) for https",
            )
          : refuse(
              "not-a-proxy-request",
              "this is the egress proxy: send requests through it (HTTP_PROXY / HTTPS_PROXY)",
            );
      const rest = path.slice("http://".length);
      const slash = rest.search(/[/?]/);
      const authority = slash < 0 ? rest : rest.slice(0, slash);
      path = slash < 0 ? "/" : rest.slice(slash);
      if (path.startsWith("?")) path = "/" + path;
      target = parseAuthority(authority, 80);
      if (!target) return refuse("bad-host", "the request's host is not a valid host name");
    }
    p.target = target;
    p.path = path;
    if (!target) return refuse("bad-host", "the request's host is not a valid host name");
    const framing = framingProblem(req.rawHeaders);
    if (framing) return refuse("ambiguous-framing", framing);
    const hostHeader = req.headers.host;
    // Keep-alive requests in one tunnel repeat the same Host: parse it once per connection.
    const known = tunnel !== undefined && this.hostSeen.get(req.socket) === hostHeader;
    const named =
      known || hostHeader === undefined ? undefined : parseAuthority(hostHeader, target.port);
    if (!known && (!named || named.host !== target.host || named.port !== target.port))
      return refuse(
        "host-mismatch",
        `the Host header does not name the host this request is for ("${target.host}")`,
      );
    if (tunnel !== undefined && !known && hostHeader !== undefined)
      this.hostSeen.set(req.socket, hostHeader);
    const encoding = req.headers["content-encoding"];
    if (encoding && encoding.toLowerCase() !== "identity")
      return refuse(
        "encoded-body",
        `request bodies with Content-Encoding "${encoding}" cannot be scanned — send them uncompressed`,
      );
    return decideRequest(
      this.rules.config.routes,
      target,
      req.method ?? "GET",
      path,
      tunnel !== undefined,
    );
  }

  /** URL and headers: no held secret, no credential shape, no placeholder of another route. */
  private scanHead(req: IncomingMessage, route: RouteRule, rules: Rules): Finding | undefined {
    const allowed = allowedPlaceholders(route);
    const inject = route.auth?.header;
    const parts = [req.url ?? ""];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = (req.rawHeaders[i] ?? "").toLowerCase();
      if (name === inject || HOP_BY_HOP.has(name)) continue;
      parts.push(`${name}: ${req.rawHeaders[i + 1] ?? ""}`);
    }
    return rules.scanner.scan(Buffer.from(parts.join("\n"), "utf8").toString("latin1"), allowed);
  }

  private outgoingHeaders(
    req: IncomingMessage,
    route: RouteRule,
  ): { allow: true; headers: OutgoingHttpHeaders } | Refusal {
    const out: OutgoingHttpHeaders = {};
    const listed = new Set(
      String(req.headers.connection ?? "")
        .split(",")
        .map((h) => h.trim().toLowerCase()),
    );
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
      out[name] = value;
    }
    const auth = route.auth;
    if (auth) {
      const token = this.options.secrets[auth.tokenEnv];
      if (!token)
        return refuse(
          "credential-missing",
          `the bundle holds no value for ${auth.tokenEnv}, the credential of "${route.host}" — the operator must set it and restart the bottle`,
          route,
        );
      out[auth.header] = auth.scheme ? `${auth.scheme} ${token}` : token;
      // Compressed replies could carry an echoed token past the redactor.
      out["accept-encoding"] = "identity";
    }
    return { allow: true, headers: out };
  }

  /** The address dialled for a host: its extra_hosts entry, or public addresses only. */
  private async resolve(target: Target): Promise<{ address: string; family: number } | Refusal> {
    if (target.ip) return { address: target.host, family: isIP(target.host) };
    const mapped = this.rules.config.extraHosts[target.host];
    if (mapped) return { address: mapped, family: isIP(mapped) };
    let cached = this.dnsCache.get(target.host);
    if (!cached || performance.now() - cached.at > 30_000) {
      let addresses: LookupAddress[];
      try {
        addresses = await this.lookup(target.host);
      } catch {
        return refuse("dns-failed", `the name "${target.host}" does not resolve`);
      }
      cached = { at: performance.now(), addresses };
      this.dnsCache.set(target.host, cached);
    }
    const internal = cached.addresses.find((a) => isInternalAddress(a.address));
    if (internal || cached.addresses.length === 0)
      return refuse(
        "private-address",
        `"${target.host}" resolves to a private, loopback or link-local address — the operator can map it on purpose with egress.extra_hosts`,
      );
    const first = cached.addresses[0] as LookupAddress;
    return { address: first.address, family: first.family };
  }

  private upstreamOptions(
    target: Target,
    tls: boolean,
    address: { address: string; family: number },
  ) {
    const fixed = (_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) =>
      opts.all ? cb(null, [address]) : cb(null, address.address, address.family);
    return {
      host: target.host,
      port: target.port,
      lookup: fixed as never,
      agent: tls ? this.rules.https : this.http,
      ...(tls && !target.ip ? { servername: target.host } : {}),
    };
  }

  /**
   * Every check a plain or decrypted request (or WebSocket upgrade) passes before anything leaves:
   * route, secrets in URL and headers, credentials only over TLS, the outgoing headers, and the
   * address to dial. A rule that throws refuses.
   */
  private async admit(
    req: IncomingMessage,
    tunnel: Target | undefined,
    p: Pending,
    rules: Rules,
    tlsUrl: string,
  ): Promise<
    | {
        route: RouteRule;
        headers: OutgoingHttpHeaders;
        address: { address: string; family: number };
      }
    | { refusal: Refusal; status?: number }
  > {
    try {
      const decision = this.check(req, tunnel, p);
      if (!decision.allow) return { refusal: decision };
      const route = decision.route;
      const finding = this.scanHead(req, route, rules);
      if (finding) return { refusal: findingRefusal(finding, route) };
      if (route.auth && tunnel === undefined)
        return {
          refusal: refuse(
            "credential-needs-tls",
            `"${route.host}" gets a credential, which is only sent over TLS — use ${tlsUrl}`,
            route,
          ),
        };
      const outgoing = this.outgoingHeaders(req, route);
      if (!outgoing.allow) return { refusal: outgoing };
      const address = await this.resolve(p.target as Target);
      if ("allow" in address)
        return { refusal: address, status: address.tag === "dns-failed" ? 502 : 403 };
      return { route, headers: outgoing.headers, address };
    } catch (err) {
      return {
        refusal: refuse("rule-error", `a rule failed (${errorText(err)}); refused to be safe`),
      };
    }
  }

  // --- HTTP requests (absolute-form, and decrypted from a tunnel) ----------------------------

  private async onRequest(
    req: IncomingMessage,
    res: ServerResponse,
    tunnel: Target | undefined,
  ): Promise<void> {
    const tls = tunnel !== undefined;
    const p = pending(tls ? "https" : "http", req.method ?? "", tunnel, req.url ?? "");
    const rules = this.rules;
    const admitted = await this.admit(req, tunnel, p, rules, "an https:// URL");
    if ("refusal" in admitted)
      return this.refuseResponse(res, p, admitted.refusal, admitted.status);
    const { route, headers, address } = admitted;
    const target = p.target as Target;
    const send = tls ? httpsRequest : httpRequest;
    const upstream = send({
      ...this.upstreamOptions(target, tls, address),
      method: req.method,
      path: p.path,
      headers,
    });
    upstream.on("socket", (s: Socket) => s.setNoDelay(true));
    // Plain listeners rather than stream pipelines: a pipeline per request costs an
    // AbortController and a DOMException, which is most of a small request's overhead.
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      upstream.destroy();
      if (err instanceof FindingError)
        this.refuseResponse(res, p, findingRefusal(err.finding, route));
      else
        this.refuseResponse(
          res,
          p,
          refuse(
            "upstream-error",
            `the request to "${target.host}" failed: ${errorText(err)}`,
            route,
          ),
          502,
        );
    };
    // The body may be all sent before the upstream fails (a refused TLS certificate, a reset).
    upstream.on("error", fail);
    res.on("close", () => {
      if (settled) return;
      settled = true;
      upstream.destroy();
      this.record(p, "allow", "aborted", { route: route.host });
    });

    const length = req.headers["content-length"];
    if (
      req.headers["transfer-encoding"] === undefined &&
      (length === undefined || length === "0")
    ) {
      upstream.end();
      req.resume();
    } else {
      const scan = rules.scanner.stream(allowedPlaceholders(route));
      req.on("data", (chunk: Buffer) => {
        if (settled) return; // a refused body is read and dropped; the reply closes the connection
        const r = scan.push(chunk);
        if (r.finding) return fail(new FindingError(r.finding));
        p.bytesOut += r.forward.length;
        if (r.forward.length && !upstream.write(r.forward) && upstream.writableLength > BACKLOG) {
          req.pause();
          upstream.once("drain", () => req.resume());
        }
      });
      req.on("end", () => {
        if (settled) return;
        const rest = scan.end();
        p.bytesOut += rest.length;
        upstream.end(rest);
      });
      req.on("error", (err) => fail(err));
    }

    upstream.on("response", (ures: IncomingMessage) => {
      if (settled) return ures.resume();
      const redactor = rules.redactions.length ? new Redactor(rules.redactions) : undefined;
      res.writeHead(
        ures.statusCode ?? 502,
        ures.statusMessage,
        responseHeaders(ures.headers, rules),
      );
      ures.on("data", (chunk: Buffer) => {
        const data = redactor ? redactor.push(chunk) : chunk;
        p.bytesIn += data.length;
        if (data.length && !res.write(data) && res.writableLength > BACKLOG) {
          ures.pause();
          res.once("drain", () => ures.resume());
        }
      });
      ures.on("end", () => {
        if (settled) return;
        settled = true;
        const rest = redactor?.end();
        if (rest?.length) p.bytesIn += rest.length;
        res.end(rest?.length ? rest : undefined);
        this.record(p, "allow", "allowed", { route: route.host, status: ures.statusCode ?? 0 });
      });
      ures.on("error", () => {
        if (settled) return;
        settled = true;
        res.destroy();
        this.record(p, "allow", "aborted", { route: route.host, status: ures.statusCode ?? 0 });
      });
    });
  }

  // --- CONNECT -------------------------------------------------------------------------

  private onConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.setNoDelay(true);
    socket.on("error", () => socket.destroy());
    const p = pending("connect", "CONNECT", undefined, "");
    let decision: Decision;
    try {
      const target = parseAuthority(req.url ?? "", 443);
      if (!target || !/:\d+$/.test(req.url ?? ""))
        return this.refuseSocket(socket, p, refuse("bad-host", "CONNECT needs host:port"), 400);
      p.target = target;
      decision = decideConnect(this.rules.config.routes, target);
    } catch (err) {
      return this.refuseSocket(
        socket,
        p,
        refuse("rule-error", `a rule failed (${errorText(err)}); refused to be safe`),
      );
    }
    if (!decision.allow) return this.refuseSocket(socket, p, decision);
    const target = p.target;
    if (decision.route.tlsPassthrough)
      return this.passthrough(socket, head, target, decision.route, p);
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length) socket.unshift(head);
    let sniProblem: Refusal | undefined;
    const tlsSocket = new TLSSocket(socket, {
      isServer: true,
      secureContext: this.options.ca.context(target.host),
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
        cb(null, this.options.ca.context(target.host));
      },
    });
    let established = false;
    tlsSocket.once("secure", () => (established = true));
    tlsSocket.on("error", (err) => {
      if (!established)
        this.record(p, "refuse", sniProblem?.tag ?? "tls-handshake-failed", {
          reason:
            sniProblem?.reason ??
            `bot-bottle: the TLS handshake with the agent failed (${errorText(err)}) — does the client trust the bottle's CA?`,
        });
      tlsSocket.destroy();
    });
    this.tunnels.set(tlsSocket, target);
    this.inner.emit("connection", tlsSocket);
  }

  private passthrough(
    socket: Socket,
    head: Buffer,
    target: Target,
    route: RouteRule,
    p: Pending,
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
      if (sni === "incomplete" || sni === "not-tls") {
        this.record(p, "refuse", "not-tls", {
          reason: "bot-bottle: a passthrough tunnel carries TLS only",
          route: route.host,
        });
        return socket.destroy();
      }
      if (sni.name !== undefined && parseAuthority(sni.name, target.port)?.host !== target.host) {
        this.record(p, "refuse", "sni-mismatch", {
          reason: `bot-bottle: the TLS server name does not match the CONNECT target "${target.host}"`,
          route: route.host,
        });
        return socket.destroy();
      }
      void this.resolve(target).then((address) => {
        if ("allow" in address) {
          this.record(p, "refuse", address.tag, { reason: address.reason, route: route.host });
          return socket.destroy();
        }
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
          this.record(p, "allow", tag, { route: route.host });
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

  // --- WebSocket -----------------------------------------------------------------------

  private async onUpgrade(
    req: IncomingMessage,
    socket: Socket,
    head: Buffer,
    tunnel: Target | undefined,
  ): Promise<void> {
    const tls = tunnel !== undefined;
    socket.on("error", () => socket.destroy());
    const p = pending("websocket", req.method ?? "GET", tunnel, req.url ?? "");
    const rules = this.rules;
    const admitted = await this.admit(req, tunnel, p, rules, "a wss:// URL");
    if ("refusal" in admitted) return this.refuseSocket(socket, p, admitted.refusal);
    const { route, address } = admitted;
    const headers = {
      ...admitted.headers,
      connection: "Upgrade",
      upgrade: req.headers.upgrade ?? "websocket",
    };
    const upstream = (tls ? httpsRequest : httpRequest)({
      ...this.upstreamOptions(p.target as Target, tls, address),
      // An upgraded socket never goes back to a pool: its own connection, verified the same way.
      agent: false,
      ...({ secureContext: rules.upstreamTls } as object),
      method: req.method,
      path: p.path,
      headers,
    });
    upstream.on("upgrade", (ures: IncomingMessage, usocket: Socket, uhead: Buffer) => {
      usocket.setNoDelay(true);
      const lines = [`HTTP/1.1 101 ${ures.statusMessage || "Switching Protocols"}`];
      for (let i = 0; i < ures.rawHeaders.length; i += 2)
        lines.push(
          `${ures.rawHeaders[i]}: ${Redactor.text(ures.rawHeaders[i + 1] ?? "", rules.redactions)}`,
        );
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      if (uhead.length) socket.write(uhead);
      if (head.length) usocket.write(head);
      socket.on("data", (c: Buffer) => (p.bytesOut += c.length));
      usocket.on("data", (c: Buffer) => (p.bytesIn += c.length));
      socket.pipe(usocket);
      usocket.pipe(socket);
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        this.record(p, "allow", "allowed", { route: route.host, status: 101 });
        usocket.destroy();
        socket.destroy();
      };
      usocket.on("close", finish);
      usocket.on("error", finish);
      socket.on("close", finish);
    });
    upstream.on("response", (ures: IncomingMessage) => {
      const lines = [`HTTP/1.1 ${ures.statusCode ?? 502} ${ures.statusMessage ?? ""}`];
      const h = responseHeaders(ures.headers, rules);
      for (const [k, v] of Object.entries(h))
        for (const one of [v].flat()) lines.push(`${k}: ${String(one)}`);
      lines.push("connection: close");
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      const redactor = new Redactor(rules.redactions);
      ures.on("data", (c: Buffer) => socket.write(redactor.push(c)));
      ures.on("end", () => {
        socket.end(redactor.end());
        this.record(p, "allow", "not-upgraded", {
          route: route.host,
          status: ures.statusCode ?? 0,
        });
      });
    });
    upstream.on("error", (err) =>
      this.refuseSocket(
        socket,
        p,
        refuse(
          "upstream-error",
          `the request to "${p.target?.host ?? ""}" failed: ${errorText(err)}`,
          route,
        ),
        502,
      ),
    );
    upstream.end();
  }
}

/**
 * The reason as a header value too: clients drop the body of a refused CONNECT (curl prints
 * "CONNECT tunnel failed, response 403"), but `curl -v` and proxy agents show its headers.
 */
function headerSafe(reason: string): string {
  return reason.replaceAll("—", "-").replace(/[^\x20-\x7e]/g, "?");
}

function framingProblem(raw: readonly string[]): string | undefined {
  let lengths = 0;
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] ?? "").toLowerCase();
    if (name === "content-length") lengths++;
    if (name === "transfer-encoding") chunked = true;
  }
  if (lengths > 1) return "bot-bottle: the request has more than one Content-Length — send one";
  if (lengths && chunked)
    return "bot-bottle: the request has both Content-Length and Transfer-Encoding — send one of them";
  return undefined;
}

function allowedPlaceholders(route: RouteRule): ReadonlySet<string> {
  return new Set(route.auth ? [route.auth.tokenEnv] : []);
}

function findingRefusal(finding: Finding, route: RouteRule): Refusal {
  if (finding.kind === "placeholder")
    return refuse(
      "placeholder-wrong-host",
      `the request carries the placeholder for ${finding.name}, which only goes to its own route's host, not "${route.host}"`,
      route,
    );
  return refuse(
    "secret-detected",
    `the request carries ${finding.description} (${finding.name}) — secrets may not leave the bottle`,
    route,
  );
}

function responseHeaders(headers: IncomingHttpHeaders, rules: Rules): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = Array.isArray(value)
      ? value.map((v) => Redactor.text(v, rules.redactions))
      : Redactor.text(value, rules.redactions);
  }
  return out;
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e.code ?? (err instanceof Error ? err.message : String(err))).slice(0, 200);
}

/**
 * HTTP forwarding: an admitted request (absolute-form, or decrypted from a tunnel) sent upstream
 * with the framing admission decided, its body scanned as it streams, and the response streamed
 * back with every held token replaced by its placeholder — in the status line, the headers and the
 * body, decoded first when a credential route's upstream compresses it anyway. After anything
 * that goes wrong, the upstream connection is destroyed, never returned to the pool.
 */
import type {
  IncomingHttpHeaders,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import type { Readable, Transform } from "node:stream";
import { createBrotliDecompress, createUnzip } from "node:zlib";
import { admit, allowedPlaceholders, refusedForKey } from "./admission.js";
import { KEY_CHALLENGE, PROXY_AUTH_STATUS } from "./agent-key.js";
import { errorText, findingRefusal, pending, type Pending } from "./audit.js";
import { BACKLOG, type ProxyContext, type Rules } from "./context.js";
import { Redactor, type Finding } from "../dlp.js";
import { EXCHANGE_LIMIT, expiresIn, rotatedTokens, swapPlaceholder } from "./exchange.js";
import { refuse, type Target } from "./policy.js";
import type { RouteRule } from "../../shared/egress-config.js";
import type { Address } from "./resolve.js";

class FindingError extends Error {
  constructor(readonly finding: Finding) {
    super(finding.description);
  }
}

/** Response headers that describe one hop. */
const RESPONSE_HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export async function forwardRequest(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  tunnel: Target | undefined,
): Promise<void> {
  const tls = tunnel !== undefined;
  const p = pending(tls ? "https" : "http", req.method ?? "", tunnel, req.url ?? "");
  const release = await ctx.turns.take(req.socket);
  if (!release) return dropAfterClose(ctx, req, res, p);
  res.once("close", release);
  const noKey = tunnel === undefined ? refusedForKey(ctx.agentKey, req, p) : undefined;
  if (noKey) return ctx.recorder.refuseResponse(res, p, noKey, PROXY_AUTH_STATUS, KEY_CHALLENGE);
  const rules = ctx.rules;
  const admitted = await admit(ctx, req, tunnel, p, rules, "an https:// URL");
  if ("refusal" in admitted)
    return ctx.recorder.refuseResponse(res, p, admitted.refusal, admitted.status);
  const { route, headers, address, framing } = admitted;
  const target = p.target as Target;
  const send = tls ? httpsRequest : httpRequest;
  const upstream = send({
    ...upstreamOptions(ctx, rules, target, tls, address),
    method: req.method,
    path: p.path,
    headers,
  });
  upstream.on("socket", (s: Socket) => s.setNoDelay(true));
  upstream.setTimeout(ctx.limits.idleMs, () => fail(new Error("no reply within the idle limit")));
  // Plain listeners rather than stream pipelines: a pipeline per request costs an
  // AbortController and a DOMException, which is most of a small request's overhead.
  let settled = false;
  const fail = (err: Error) => {
    if (settled) return;
    settled = true;
    upstream.destroy();
    if (err instanceof FindingError)
      ctx.recorder.refuseResponse(res, p, findingRefusal(err.finding, route));
    else
      ctx.recorder.refuseResponse(
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
    ctx.recorder.record(p, "allow", "aborted", { route: route.host });
  });

  if (framing.body === "none") {
    upstream.end();
    req.resume();
  } else {
    const scan = rules.scanner.stream(allowedPlaceholders(route));
    // A token endpoint's request is held whole: its refresh placeholder becomes the real token.
    const held: Buffer[] | undefined = route.exchange ? [] : undefined;
    let heldBytes = 0;
    req.on("data", (chunk: Buffer) => {
      if (settled) return; // a refused body is read and dropped; the reply closes the connection
      const r = scan.push(chunk);
      if (r.finding) return fail(new FindingError(r.finding));
      p.bytesOut += r.forward.length;
      if (held) {
        held.push(r.forward);
        heldBytes += r.forward.length;
        if (heldBytes > EXCHANGE_LIMIT)
          fail(new Error(`the token request is larger than ${EXCHANGE_LIMIT} bytes`));
        return;
      }
      if (r.forward.length && !upstream.write(r.forward) && upstream.writableLength > BACKLOG) {
        req.pause();
        upstream.once("drain", () => req.resume());
      }
    });
    req.on("end", () => {
      if (settled) return;
      const rest = scan.end();
      p.bytesOut += rest.length;
      if (held && route.exchange) {
        const name = route.exchange.refreshEnv;
        const placeholder = rules.placeholders.get(name) ?? "";
        const real = ctx.options.secrets[name] ?? "";
        upstream.end(swapPlaceholder(Buffer.concat([...held, rest]), placeholder, real));
        return;
      }
      upstream.end(rest);
    });
    req.on("error", (err) => fail(err));
  }

  upstream.on("response", (ures: IncomingMessage) => {
    if (settled) return ures.resume();
    const decoded = route.auth ? decoderFor(ures.headers["content-encoding"]) : "identity";
    if (decoded === "refuse")
      return fail(
        new Error(
          `the reply is encoded as "${ures.headers["content-encoding"] ?? ""}", which the proxy cannot decode to keep the credential out of it`,
        ),
      );
    const redactor = rules.redactions.length ? new Redactor(rules.redactions) : undefined;
    const headers = responseHeaders(ures.headers, rules);
    if (decoded !== "identity") {
      delete headers["content-encoding"];
      delete headers["content-length"];
    }
    res.writeHead(
      ures.statusCode ?? 502,
      Redactor.text(ures.statusMessage ?? "", rules.redactions),
      headers,
    );
    const source: Readable = decoded === "identity" ? ures : ures.pipe(decoded);
    if (route.exchange)
      return relayExchange(ctx, p, route, ures, source, res, fail, (s) => (settled = s));
    source.on("data", (chunk: Buffer) => {
      if (settled) return;
      const data = redactor ? redactor.push(chunk) : chunk;
      p.bytesIn += data.length;
      if (data.length && !res.write(data) && res.writableLength > BACKLOG) {
        source.pause();
        res.once("drain", () => source.resume());
      }
    });
    source.on("end", () => {
      if (settled) return;
      settled = true;
      const rest = redactor?.end();
      if (rest?.length) p.bytesIn += rest.length;
      res.end(rest?.length ? rest : undefined);
      ctx.recorder.record(p, "allow", "allowed", {
        route: route.host,
        status: ures.statusCode ?? 0,
      });
    });
    const aborted = () => {
      if (settled) return;
      settled = true;
      upstream.destroy();
      res.destroy();
      ctx.recorder.record(p, "allow", "aborted", {
        route: route.host,
        status: ures.statusCode ?? 0,
      });
    };
    ures.on("error", aborted);
    if (source !== ures) source.on("error", aborted);
  });
}

/**
 * A token endpoint's reply, held whole: the new tokens of a successful one become the bundle's
 * (ctx.rotate), then the reply is redacted with the rules that know them, so the agent receives
 * their placeholders.
 */
function relayExchange(
  ctx: ProxyContext,
  p: Pending,
  route: RouteRule,
  ures: IncomingMessage,
  source: Readable,
  res: ServerResponse,
  fail: (err: Error) => void,
  settle: (settled: boolean) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  source.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > EXCHANGE_LIMIT && !over) {
      over = true;
      fail(new Error(`the token endpoint's reply is larger than ${EXCHANGE_LIMIT} bytes`));
    }
    if (!over) chunks.push(chunk);
  });
  source.on("end", () => {
    if (over) return;
    const body = Buffer.concat(chunks);
    const status = ures.statusCode ?? 0;
    const tokens =
      route.exchange && status >= 200 && status < 300
        ? rotatedTokens(body, route.exchange)
        : undefined;
    const rotated = tokens && Object.keys(tokens).length ? Object.keys(tokens) : undefined;
    const rules = rotated && tokens ? ctx.rotate(tokens, expiresIn(body)) : ctx.rules;
    const redactor = new Redactor(rules.redactions);
    const out = Buffer.concat([redactor.push(body), redactor.end()]);
    settle(true);
    p.bytesIn += out.length;
    res.end(out);
    ctx.recorder.record(p, "allow", "allowed", {
      route: route.host,
      status,
      ...(rotated ? { rotated } : {}),
    });
  });
  source.on("error", (err: Error) => fail(err));
}

/** A decoder for a compressed reply on a credential route, or "refuse" when there is none. */
function decoderFor(encoding: string | undefined): Transform | "identity" | "refuse" {
  const e = (encoding ?? "").trim().toLowerCase();
  if (e === "" || e === "identity") return "identity";
  if (e === "gzip" || e === "x-gzip" || e === "deflate") return createUnzip();
  if (e === "br") return createBrotliDecompress();
  return "refuse";
}

export function upstreamOptions(
  ctx: ProxyContext,
  rules: Rules,
  target: Target,
  tls: boolean,
  address: Address,
) {
  const fixed = (_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) =>
    opts.all ? cb(null, [address]) : cb(null, address.address, address.family);
  return {
    host: target.host,
    port: target.port,
    lookup: fixed as never,
    agent: tls ? rules.https : ctx.http,
    ...(tls && !target.ip ? { servername: target.host } : {}),
  };
}

/** The upstream's headers for the agent: end-to-end ones only, every held token redacted. */
export function responseHeaders(headers: IncomingHttpHeaders, rules: Rules): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = new Set(
    String(headers.connection ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase()),
  );
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || RESPONSE_HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[Redactor.text(name, rules.redactions)] = Array.isArray(value)
      ? value.map((v) => Redactor.text(v, rules.redactions))
      : Redactor.text(value, rules.redactions);
  }
  return out;
}

/** A request the agent sent behind a refusal on the same connection: recorded, never sent. */
function dropAfterClose(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  p: ReturnType<typeof pending>,
): void {
  ctx.recorder.record(p, "refuse", "after-close", {
    reason: "bot-bottle: a request sent after a refusal on the same connection is not read",
  });
  req.resume();
  res.destroy();
}

/**
 * Refusal and audit: one audit line per decision, the refusal the agent sees (HTTP 403, or 407
 * for a missing proxy key, with a machine tag and a one-line reason), and the rule that no secret the scanner can find is ever
 * written to the audit log or the bundle's log — a field that carries one is withheld whole.
 */
import { STATUS_CODES, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { AuditRecord, RouteRule } from "../../shared/egress-config.js";
import type { Logger } from "../log.js";
import type { Finding, SecretScanner } from "../dlp.js";
import { auditPath, refuse, type Refusal, type Target } from "./policy.js";
import { scanHostName } from "./resolve.js";

/** A decision under way: what the audit line will say once it is made. */
export interface Pending {
  kind: AuditRecord["kind"];
  method: string;
  target: Target | undefined;
  path: string;
  started: number;
  bytesOut: number;
  bytesIn: number;
}

export function pending(
  kind: AuditRecord["kind"],
  method: string,
  target: Target | undefined,
  path: string,
): Pending {
  return { kind, method, target, path, started: performance.now(), bytesOut: 0, bytesIn: 0 };
}

export const WITHHELD = "<withheld: carries a secret>";

/** What the recorder scans with: the scanner, the placeholders it may see, the secrets. */
export interface ScanSnapshot {
  scanner: SecretScanner;
  placeholders: ReadonlySet<string>;
  secrets: Readonly<Record<string, string>>;
}

/** Verdicts remembered per snapshot (all forgotten at once when full), for texts this long at most. */
const VERDICTS = 1024;
const VERDICT_TEXT = 1024;

export class Recorder {
  /** The scanner's verdict by field text, per snapshot `scanning` returns ("t"/"h" + text). */
  private readonly verdicts = new WeakMap<ScanSnapshot, Map<string, boolean>>();

  constructor(
    private readonly sink: (record: AuditRecord) => void,
    private readonly log: Logger,
    /** Told of a connection the proxy has answered with `Connection: close`. */
    private readonly closing: (socket: Duplex) => void,
    /**
     * The scanner now, and the placeholders it may see (they are not secrets): the same object
     * for as long as the rules are the same (verdicts are remembered per object).
     */
    private readonly scanning: () => ScanSnapshot,
  ) {}

  record(p: Pending, decision: "allow" | "refuse", tag: string, extra: Partial<AuditRecord> = {}) {
    const entry: AuditRecord = {
      time: new Date().toISOString(),
      kind: p.kind,
      method: p.method,
      host: p.target?.host ?? "",
      port: p.target?.port ?? 0,
      path: auditPath(withoutAuthority(p.path)),
      decision,
      tag,
      ...extra,
      bytesOut: p.bytesOut,
      bytesIn: p.bytesIn,
      ms: Math.round((performance.now() - p.started) * 10) / 10,
    };
    const safe = this.withhold(entry);
    this.sink(safe);
    if (decision === "refuse")
      this.log("refuse", safe.reason ?? tag, {
        tag,
        method: safe.method,
        host: safe.host,
        path: safe.path,
      });
  }

  /**
   * Every text field the agent could have put a secret in, withheld when it carries one. Every
   * record's method, host and path are scanned, allowed ones too: an allowed request's target
   * passed the head scan, but the audit path is not the text that scan saw (the authority is cut
   * off, query values dropped, long paths truncated, and a cut can make a boundary a shape needs),
   * and a reload may have changed the scanner since. What is saved instead is the repeat: an
   * agent sends the same few hosts and paths over and over, and the scanner's verdict on the same
   * text under the same scanner and placeholders is the same, so it is remembered per snapshot.
   */
  private withhold(entry: AuditRecord): AuditRecord {
    const snapshot = this.scanning();
    const { scanner, placeholders, secrets } = snapshot;
    let seen = this.verdicts.get(snapshot);
    if (!seen) this.verdicts.set(snapshot, (seen = new Map<string, boolean>()));
    const verdicts = seen;
    const carries = (key: string, text: string, scan: () => boolean) => {
      if (text.length > VERDICT_TEXT) return scan();
      let v = verdicts.get(key);
      if (v === undefined) {
        v = scan();
        if (verdicts.size >= VERDICTS) verdicts.clear();
        verdicts.set(key, v);
      }
      return v;
    };
    const scanText = (text: string) =>
      scanner.scan(Buffer.from(text, "utf8").toString("latin1"), placeholders) !== undefined;
    const clean = (text: string) =>
      text && carries("t" + text, text, () => scanText(text)) ? WITHHELD : text;
    const out = {
      ...entry,
      method: clean(entry.method),
      // A host name is scanned as resolve.ts scans it: labels run together and decoded too.
      host:
        entry.host &&
        carries(
          "h" + entry.host,
          entry.host,
          () => scanHostName(entry.host, scanner, secrets) !== undefined || scanText(entry.host),
        )
          ? WITHHELD
          : entry.host,
      path: clean(entry.path),
    };
    // Reasons quote the host and path they refuse: a withheld one is withheld there too.
    if (entry.reason !== undefined)
      out.reason = clean(
        out.host === WITHHELD && entry.host
          ? entry.reason.replaceAll(entry.host, WITHHELD)
          : entry.reason,
      );
    return out;
  }

  /** `headers`: more response headers (a 407's challenge), names and values of our own. */
  refuseResponse(
    res: ServerResponse,
    p: Pending,
    r: Refusal,
    status = 403,
    headers: Readonly<Record<string, string>> = {},
  ): void {
    this.recordRefusal(p, r, status);
    this.closing(res.req.socket);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = r.reason + "\n";
    res.writeHead(status, {
      ...headers,
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "x-bot-bottle-refusal": r.tag,
      "x-bot-bottle-reason": headerSafe(r.reason),
      // A refused request's body is not read to its end: nothing more comes on this connection.
      connection: "close",
    });
    res.end(body);
  }

  refuseSocket(
    socket: Duplex,
    p: Pending,
    r: Refusal,
    status = 403,
    headers: Readonly<Record<string, string>> = {},
  ): void {
    this.recordRefusal(p, r, status);
    this.closing(socket);
    const body = r.reason + "\n";
    const text = STATUS_CODES[status] ?? "Forbidden";
    const more = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
    if (socket.writable)
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\n${more}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Bot-Bottle-Refusal: ${r.tag}\r\nX-Bot-Bottle-Reason: ${headerSafe(r.reason)}\r\nConnection: close\r\n\r\n${body}`,
      );
    else socket.destroy();
  }

  private recordRefusal(p: Pending, r: Refusal, status: number): void {
    this.record(p, "refuse", r.tag, {
      reason: r.reason,
      status,
      ...(r.route ? { route: r.route.host } : {}),
    });
  }
}

/** An absolute-form target keeps only its path: the host has its own field, userinfo none. */
function withoutAuthority(path: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(path);
  return m ? path.slice(m[0].length) || "/" : path;
}

/**
 * The reason as a header value too: clients drop the body of a refused CONNECT (curl prints
 * "CONNECT tunnel failed, response 403"), but `curl -v` and proxy agents show its headers.
 */
export function headerSafe(reason: string): string {
  return reason.replaceAll("—", "-").replace(/[^\x20-\x7e]/g, "?");
}

export function findingRefusal(finding: Finding, route: RouteRule): Refusal {
  if (finding.kind === "budget")
    return refuse(
      "scan-budget",
      `the request took longer to scan than a request may (${finding.description}) — send it in smaller parts`,
      route,
    );
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

export function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e.code ?? (err instanceof Error ? err.message : String(err))).slice(0, 200);
}

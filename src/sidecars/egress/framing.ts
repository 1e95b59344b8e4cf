/**
 * How a request's body is delimited, decided once from the raw header lines the agent sent and
 * then set by the proxy itself on the request it forwards. The agent's own framing headers never
 * travel: an upstream sees exactly one Content-Length, or chunked encoding, or no body — never a
 * body it would read as the start of the next request on a pooled connection.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { refuse, type Refusal } from "./policy.js";

export type Framing = { body: "none" } | { body: "length"; length: number } | { body: "chunked" };

/** Methods that carry no body: one that comes with a body is refused, never forwarded. */
const BODILESS = new Set(["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"]);

/** Headers a `Connection:` list may not remove: framing, the host and the credentials. */
const PROTECTED = new Set([
  "content-length",
  "transfer-encoding",
  "host",
  "authorization",
  "cookie",
  "content-type",
  "content-encoding",
]);

/** Headers that describe one hop; never copied from the agent's request to the upstream's. */
export const HOP_BY_HOP = new Set([
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
  // Set by the proxy from the framing decided here and from the checked target.
  "content-length",
  "host",
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The request's framing, or why it is refused. Reads `rawHeaders`: every line, not a merge. */
export function requestFraming(req: IncomingMessage): Framing | Refusal {
  const method = req.method ?? "";
  const lengths: string[] = [];
  const encodings: string[] = [];
  let hosts = 0;
  const listed: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] ?? "").toLowerCase();
    const value = raw[i + 1] ?? "";
    if (name === "content-length") lengths.push(value.trim());
    else if (name === "transfer-encoding") encodings.push(value.trim().toLowerCase());
    else if (name === "host") hosts++;
    else if (name === "connection" || name === "proxy-connection")
      listed.push(...value.split(",").map((t) => t.trim().toLowerCase()));
  }
  if (hosts !== 1) return ambiguous("the request must carry exactly one Host header");
  for (const token of listed) {
    if (token === "" || !TOKEN.test(token))
      return ambiguous("the Connection header is not a list of header names");
    if (PROTECTED.has(token))
      return ambiguous(`the Connection header may not remove ${token} — send it as a plain header`);
  }
  if (lengths.length > 1)
    return ambiguous("the request has more than one Content-Length — send one");
  if (lengths.length && encodings.length)
    return ambiguous(
      "the request has both Content-Length and Transfer-Encoding — send one of them",
    );
  if (encodings.length > 1 || (encodings.length === 1 && encodings[0] !== "chunked"))
    return refuse(
      "encoded-body",
      `request bodies with Transfer-Encoding "${encodings.join(", ")}" cannot be scanned — send them uncompressed, chunked or with a Content-Length`,
    );
  let framing: Framing = { body: "none" };
  if (encodings.length) framing = { body: "chunked" };
  else if (lengths.length) {
    const text = lengths[0] ?? "";
    if (!/^\d{1,15}$/.test(text)) return ambiguous("the Content-Length is not a number");
    const length = Number(text);
    if (length > 0) framing = { body: "length", length };
  }
  if (framing.body !== "none" && BODILESS.has(method))
    return refuse(
      "body-not-allowed",
      `a ${method} request may not carry a body through the proxy — send the body with POST, PUT or PATCH`,
    );
  return framing;
}

/** The framing headers the proxy sets on the request it forwards. */
export function framingHeaders(framing: Framing, method: string): OutgoingHttpHeaders {
  switch (framing.body) {
    case "length":
      return { "content-length": String(framing.length) };
    case "chunked":
      return { "transfer-encoding": "chunked" };
    case "none":
      return BODILESS.has(method) ? {} : { "content-length": "0" };
  }
}

function ambiguous(reason: string): Refusal {
  return refuse("ambiguous-framing", reason);
}

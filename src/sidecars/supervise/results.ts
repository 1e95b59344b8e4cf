/**
 * The one line the agent's model reads back from a tool call: what became of its request, in
 * words it can act on ("approved for 1h: api.example.com GET /v1/", "denied (timeout)",
 * "pending: request r-… waits for the operator; …").
 */
import type { RequestBody, SuperviseRecord } from "../../shared/supervise.js";

type Decided = Extract<SuperviseRecord, { event: "decided" }>;

/** What a request asks for, in one line: "api.example.com:8443 GET,POST /v1/ /v2/". */
export function describeRequest(body: RequestBody): string {
  switch (body.kind) {
    case "egress-route":
      return [
        body.port !== undefined ? `${body.host}:${body.port}` : body.host,
        ...(body.methods ? [body.methods.join(",")] : []),
        ...(body.paths ?? []),
      ].join(" ");
    case "git-repo":
      return `git ${body.upstream}`;
    case "question":
      return "question";
  }
}

/** Seconds as the operator writes a lease: "1h", "1h30m", "45s". */
export function formatLease(seconds: number): string {
  let rest = Math.max(0, Math.round(seconds));
  if (rest === 0) return "0s";
  let out = "";
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

export function pendingResult(id: string): string {
  return `pending: request ${id} waits for the operator; call request_status with id ${id} later`;
}

export function refusedResult(reason: string): string {
  return `refused: ${reason}`;
}

/** The result of a decided request: what the operator (or the clock) said. */
export function decidedResult(record: Decided, body: RequestBody): string {
  const what = record.applied ?? describeRequest(body);
  switch (record.outcome) {
    case "approved":
      return record.until !== undefined
        ? `approved for ${formatLease((Date.parse(record.until) - Date.parse(record.time)) / 1000)}: ${what}`
        : `approved: ${what}`;
    case "answered":
      return `answer: ${record.answer ?? ""}`;
    case "denied":
      if (record.by !== "operator") return `denied (${record.by})`;
      return `denied: ${record.reason?.trim() || "no reason given"}`;
  }
}

/** The result of an approval whose lease has ended. */
export function expiredResult(record: Decided, body: RequestBody): string {
  return `expired: the approval of ${record.applied ?? describeRequest(body)} ended at ${record.until ?? record.time}; ask again if you still need it`;
}

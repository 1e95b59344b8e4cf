/**
 * The cage self-test, run by `start` before the agent's command: one `exec` into the agent runs a
 * small probe program (images/probes/cage.mjs, on its command line) that tries every way out at
 * once — an IP literal, the host's addresses, IPv6, DNS for an outside name, the metadata address,
 * a bundle port the plan does not list, an outside name without the proxy — and each port the plan
 * does list. Every attempt out must end in the specific network error the cage produces; anything
 * else (a connection, an unexpected error, a missing answer) means the bottle is not handed over.
 */
import { readFile } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import type { AgentReach, Bottle } from "../backends/backend.js";
import { BotBottleError, EXIT } from "../errors.js";
import { CommandFailedError } from "../exec/run.js";
import { PACKAGE_ROOT } from "../package-root.js";
import type { CageProbeRecord, CageRecord } from "../state/bottle-state.js";
import type { RootStep } from "./steps.js";

export const CAGE_PROBE_SCRIPT = join(PACKAGE_ROOT, "images", "probes", "cage.mjs");

/** How long a probe out may wait before "no answer" counts as refused, and an allowed one. */
export const DENY_TIMEOUT_MS = 40;
export const ALLOW_TIMEOUT_MS = 5_000;
/** `start` runs the probes as soon as the agent runs, while the bundle may still be starting: an
 * allowed probe refused meanwhile tries again for as long as a backend waits for the bundle. */
export const BUNDLE_WAIT_MS = 60_000;

/** A public address and name the cage must not reach; only a broken cage would send to them. */
const OUTSIDE_IPV4 = "1.1.1.1";
const OUTSIDE_IPV6 = "2606:4700:4700::1111";
// Docker's embedded resolver keeps trying to forward a query for an outside name for about 4 s,
// and an engine that stops the agent sooner waits for it: a bottle stopped within seconds of its
// start takes that long to stop. How the query is asked does not matter (a bare UDP query to
// 127.0.0.11, given up after 30 ms, leaves the same 4 s on Docker 20.10): any probe of DNS for
// an outside name has this cost.
const OUTSIDE_NAME = "example.com";
const METADATA_IP = "169.254.169.254";
/** The port tried on the host's addresses: answered or reset, either proves a path. */
const HOST_PORT = 22;

// The errors a closed cage gives. Docker's internal network still routes everything off the
// subnet to a gateway address no one holds, so an IP out meets no answer (EHOSTUNREACH once the
// neighbour lookup gives up, seconds later) — while any real path answers within a millisecond
// or two: a refusal (ECONNREFUSED) or a connection, both of which count as out. Outside names
// meet a resolver with no way to forward them; IPv6 has no address; a bundle port off the plan is
// closed.
const NO_ROUTE = ["EHOSTUNREACH", "ENETUNREACH", "timeout"] as const;
const NO_IPV6 = ["EADDRNOTAVAIL", "ENETUNREACH", "EHOSTUNREACH", "EAFNOSUPPORT"] as const;
const NO_NAME = ["ETIMEOUT", "ESERVFAIL", "ENOTFOUND", "EREFUSED", "timeout"] as const;
const CLOSED = ["ECONNREFUSED"] as const;

export type ProbeKind = "tcp" | "dns" | "http";

export interface CageProbe {
  /** Short and unique: names the probe in the cage line, errors and metadata.json. */
  name: string;
  kind: ProbeKind;
  /** A name or address; "@gateway" is the first address of the agent's own subnet. */
  host: string;
  port?: number;
  path?: string;
  timeoutMs: number;
  /** An allowed probe's connection refused (the bundle not listening yet) is tried again for up
   * to this long. */
  retryRefusedMs?: number;
  /** Run only once every allowed probe has answered or given up: a bundle port off the plan
   * proves closed only once the bundle listens. */
  afterAllowed?: true;
  /** A TCP probe keeps a connection it opened this long: cut before then ("ECONNRESET",
   * "closed"), it reached no service. */
  holdMs?: number;
  /** A probe out must fail with one of `refused`; an allowed one must answer (with `refusal`:
   * the egress proxy's refusal header). */
  expect: { refused: readonly string[] } | { answers: "connect" | "refusal" };
}

/** What the probe program reports for one probe. */
export interface ProbeOutcome {
  name: string;
  outcome: "connected" | "error";
  code?: string;
  status?: number;
  refusal?: string;
  address?: string;
  ms?: number;
}

export interface CageResult {
  record: CageRecord;
  /** The probes that went wrong: out that got out, or allowed that did not answer. */
  failures: (CageProbeRecord & { accepted: readonly string[] })[];
}

/** The non-loopback IPv4 addresses of this host, named by interface (docker0: the host gateway). */
export function hostAddresses(): { name: string; address: string }[] {
  const seen = new Set<string>();
  const out: { name: string; address: string }[] = [];
  for (const [ifname, addrs] of Object.entries(networkInterfaces()))
    for (const a of addrs ?? [])
      if (a.family === "IPv4" && !a.internal && !seen.has(a.address)) {
        seen.add(a.address);
        out.push({
          name: ifname === "docker0" ? "host-gateway" : `host ${ifname}`,
          address: a.address,
        });
      }
  return out;
}

/** The probe set for a bottle whose agent reaches its bundle as `reach` says. */
export function cageProbes(
  reach: AgentReach,
  hosts: readonly { name: string; address: string }[],
): CageProbe[] {
  const out = (
    name: string,
    kind: ProbeKind,
    host: string,
    port: number | undefined,
    codes: readonly string[],
  ): CageProbe => ({
    name,
    kind,
    host,
    ...(port !== undefined ? { port } : {}),
    // A probe that passes on silence gives up soon; one that passes only on an answer (a closed
    // port's refusal, a local error) waits for it, so a busy machine's slow answer is not
    // mistaken for a way out.
    timeoutMs: codes.includes("timeout") ? DENY_TIMEOUT_MS : ALLOW_TIMEOUT_MS,
    expect: { refused: codes },
  });
  return [
    out("ip-literal", "tcp", OUTSIDE_IPV4, 443, NO_ROUTE),
    out("ipv6", "tcp", OUTSIDE_IPV6, 443, NO_IPV6),
    out("dns", "dns", OUTSIDE_NAME, undefined, NO_NAME),
    out("no-proxy", "tcp", OUTSIDE_NAME, 443, NO_NAME),
    out("metadata", "tcp", METADATA_IP, 80, NO_ROUTE),
    ...(reach.unlisted
      ? [
          {
            ...out(
              "bundle-port",
              "tcp",
              reach.unlisted.host,
              reach.unlisted.port,
              reach.unlisted.refused ?? CLOSED,
            ),
            ...(reach.unlisted.holdMs ? { holdMs: reach.unlisted.holdMs } : {}),
            afterAllowed: true as const,
          },
        ]
      : []),
    ...(reach.gatewayClosed
      ? [out("internal-gateway", "tcp", "@gateway", HOST_PORT, NO_ROUTE)]
      : []),
    ...hosts.map((h) => out(h.name, "tcp", h.address, HOST_PORT, NO_ROUTE)),
    ...(reach.unreachable ?? []).map((u) => out(u.name, "tcp", u.host, u.port, NO_ROUTE)),
    ...Object.entries(reach.daemons).map(([name, { host, port }]): CageProbe => ({
      name,
      kind: name === "egress" ? "http" : "tcp",
      host,
      port,
      ...(name === "egress" ? { path: "/" } : {}),
      timeoutMs: ALLOW_TIMEOUT_MS,
      retryRefusedMs: BUNDLE_WAIT_MS,
      expect: { answers: name === "egress" ? "refusal" : "connect" },
    })),
  ];
}

function describeOutcome(o: ProbeOutcome): string {
  if (o.outcome === "error") return o.code ?? "error";
  if (o.status !== undefined)
    return `HTTP ${o.status}${o.refusal ? ` refused (${o.refusal})` : ""}`;
  return o.address ? `resolved ${o.address}` : "connected";
}

/** Judges each probe's outcome against what it expects. Pure. */
export function judge(
  probes: readonly CageProbe[],
  outcomes: readonly ProbeOutcome[],
  ms: number,
  now: Date,
): CageResult {
  const byName = new Map(outcomes.map((o) => [o.name, o]));
  const records = probes.map((p): CageProbeRecord => {
    const o = byName.get(p.name);
    const target = `${p.host}${p.port !== undefined ? `:${p.port}` : ""}`;
    if (!o)
      return {
        name: p.name,
        target,
        expected: "refused" in p.expect ? "refused" : "answers",
        result: "no result",
        ok: false,
      };
    const result = describeOutcome(o);
    if ("refused" in p.expect)
      return {
        name: p.name,
        target,
        expected: "refused",
        result,
        ok: o.outcome === "error" && o.code !== undefined && p.expect.refused.includes(o.code),
      };
    const ok =
      o.outcome === "connected" &&
      (p.expect.answers === "connect" || (o.status === 403 && o.refusal !== undefined));
    return { name: p.name, target, expected: "answers", result, ok };
  });
  const failures = records.flatMap((r, i) => {
    const p = probes[i];
    return r.ok || !p ? [] : [{ ...r, accepted: "refused" in p.expect ? p.expect.refused : [] }];
  });
  return {
    record: {
      checked: now.toISOString(),
      ms: Math.round(ms),
      passed: failures.length === 0,
      refused: records.filter((r) => r.expected === "refused" && r.ok).length,
      answered: records.filter((r) => r.expected === "answers" && r.ok).length,
      probes: records,
    },
    failures,
  };
}

/** "9 probes refused, egress answers" */
export function cageLine(record: CageRecord): string {
  const answered = record.probes.filter((p) => p.expected === "answers" && p.ok).map((p) => p.name);
  return `${record.refused} probes refused, ${answered.length ? `${answered.join(", ")} answer${answered.length === 1 ? "s" : ""}` : "nothing answers"}`;
}

export class CageError extends BotBottleError {
  constructor(message: string, hint: string, cause?: unknown) {
    super("refused", message, { exitCode: EXIT.environment, hint, cause });
    this.name = "CageError";
  }
}

function parseOutcomes(stdout: string): ProbeOutcome[] | undefined {
  try {
    const parsed = JSON.parse(stdout) as { results?: unknown };
    if (!Array.isArray(parsed.results)) return undefined;
    const results = parsed.results as ProbeOutcome[];
    const valid = results.every(
      (r) =>
        typeof r === "object" &&
        r !== null &&
        typeof r.name === "string" &&
        (r.outcome === "connected" || r.outcome === "error"),
    );
    return valid ? results : undefined;
  } catch {
    return undefined;
  }
}

/** The exit status of an `exec` whose root step failed (the probe program never exits with it). */
const STEP_FAILED = 86;

/**
 * Runs the probes inside the agent and judges them; the agent need only be running (the probes
 * that need the bundle wait for it). The probes run as the agent's user; with `alongside`, a root
 * step rides in the same `exec` (start installs the CA this way: one `exec` instead of two) and
 * the probes run as root, without capabilities, in the agent's network namespace: the same reach
 * as the agent's user, since nothing in the cage tells users apart. Throws CageError when the
 * probe program itself fails: a self-test that did not run has proven nothing.
 */
export async function selfTestCage(
  bottle: Bottle,
  probes: readonly CageProbe[],
  options: { now?: () => Date; alongside?: RootStep } = {},
): Promise<CageResult> {
  const { now = () => new Date(), alongside } = options;
  const script = await readFile(CAGE_PROBE_SCRIPT, "utf8");
  const spec = JSON.stringify({ probes });
  // The program on the command line, not stdin: an exec with no input attached starts sooner.
  const program = ["node", "--input-type=module", "--eval", script, spec];
  // The root step runs while node starts; the probe program's output is the exec's output.
  const shell = alongside && [
    'node --input-type=module --eval "$1" "$2" &',
    "probes=$!",
    `(\n${alongside.script}\n) >&2 || { kill $probes; exit ${STEP_FAILED}; }`,
    "wait $probes",
  ];
  const started = performance.now();
  let stdout: string;
  try {
    ({ stdout } = await bottle.exec(
      shell ? ["sh", "-c", shell.join("\n"), "sh", script, spec] : program,
      {
        ...(alongside ? { user: "root", env: alongside.env } : {}),
        timeoutMs: BUNDLE_WAIT_MS + ALLOW_TIMEOUT_MS + 10_000,
      },
    ));
  } catch (err) {
    const detail =
      err instanceof CommandFailedError ? err.stderr.trim().split("\n").slice(-1)[0] : String(err);
    if (alongside && err instanceof CommandFailedError && err.exitStatus === STEP_FAILED)
      throw new BotBottleError(
        "command_failed",
        `${alongside.what} failed in ${bottle.slug}: ${detail || "the script failed"}`,
        { exitCode: EXIT.internal, cause: err },
      );
    throw new CageError(
      `the cage self-test did not run in ${bottle.slug}: ${detail || "the probe program failed"}`,
      "the agent image needs `node` on PATH; `bot-bottle logs` shows the containers' logs",
      err,
    );
  }
  const ms = performance.now() - started;
  const outcomes = parseOutcomes(stdout.trim());
  if (!outcomes)
    throw new CageError(
      `the cage self-test in ${bottle.slug} printed no result the host can read`,
      "the probe program crashed or was replaced; the bottle is not started",
    );
  return judge(probes, outcomes, ms, now());
}

/** Throws, naming each probe that got out (or allowed probe that did not answer), unless all passed. */
export function assertCaged(slug: string, result: CageResult): void {
  if (result.failures.length === 0) return;
  const lines = result.failures.map((f) =>
    f.expected === "refused"
      ? `  ${f.name} (${f.target}) got out: ${f.result}, where a closed cage gives ${f.accepted.join(" or ")}`
      : `  ${f.name} (${f.target}) did not answer: ${f.result}`,
  );
  throw new CageError(
    `the cage self-test failed in ${slug}; the bottle is not handed over:\n${lines.join("\n")}`,
    "the agent could reach past its sidecar bundle on this engine; check `bot-bottle doctor` and the Docker network setup",
  );
}

// The cage self-test's probe program, run inside the agent by `start` (one `exec`, the program
// and the probe list as arguments). It tries every probe at once, each with a deadline, and prints
// one JSON line: what each probe met. It decides nothing; the host judges the results.
//   {"probes":[{"name","kind":"tcp"|"dns"|"http","host","port","path","timeoutMs",
//               "retryRefusedMs","afterAllowed","holdMs"}…]}
// → {"results":[{"name","outcome":"connected"|"error","code","status","refusal","address","ms"}…]}
// `start` runs it as soon as the agent runs, while the bundle may still be starting: a probe with
// retryRefusedMs (one the bundle must answer) tries again after a refused connection, for up to
// that long (or a reset one: a port published on the host accepts and resets until the bundle
// listens behind it); a probe with afterAllowed (a bundle port off the plan, which proves closed only once
// the bundle listens) waits until every such probe has answered or given up. The bundle's init
// binds its own ports before it starts the daemons those probes reach.
// Names of probes out are resolved by c-ares against the agent's resolv.conf servers, with the
// probe's deadline: the system resolver would hold a thread for its own seconds-long timeouts.
// Names the bundle must answer on are resolved as the agent's own tools resolve them (the system
// resolver: /etc/hosts, then DNS).
// "@gateway" is the first address of the agent's own subnet.
import { Resolver } from "node:dns/promises";
import { request } from "node:http";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";

// Probes go direct: an agent that ignores the proxy variables must still find no way out.
for (const name of [
  "HTTPS_PROXY",
  "HTTP_PROXY",
  "ALL_PROXY",
  "https_proxy",
  "http_proxy",
  "all_proxy",
])
  delete process.env[name];

const spec = JSON.parse(process.argv[process.argv.length - 1] ?? "");
const started = performance.now();
const ms = () => Math.round((performance.now() - started) * 10) / 10;
const errorCode = (e) =>
  typeof e?.code === "string" ? e.code : `ERROR ${String(e?.message ?? e)}`;

function withDeadline(work, timeoutMs) {
  return new Promise((resolve) => {
    // On the deadline, let the poll phase deliver any answer that already came in first: a
    // busy event loop must not turn a connection that happened into a "timeout".
    const timer = setTimeout(
      () => setImmediate(() => resolve({ outcome: "error", code: "timeout" })),
      timeoutMs,
    );
    work
      .then(
        (r) => resolve(r),
        (e) => resolve({ outcome: "error", code: errorCode(e) }),
      )
      .finally(() => clearTimeout(timer));
  });
}

function gateway() {
  for (const a of Object.values(networkInterfaces()).flat())
    if (a && a.family === "IPv4" && !a.internal) {
      const ip = a.address.split(".").map(Number);
      const mask = a.netmask.split(".").map(Number);
      return ip.map((o, i) => (i === 3 ? (o & mask[i]) + 1 : o & mask[i])).join(".");
    }
  throw Object.assign(new Error("the agent has no IPv4 interface"), { code: "ENOIPV4" });
}

/** A `lookup` for net and http that asks the resolver once, within the probe's deadline. */
function lookupWithin(timeoutMs) {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  return (hostname, options, callback) => {
    resolver.resolve4(hostname).then(
      ([address]) =>
        options?.all ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4),
      (e) => callback(e),
    );
  };
}

/** The lookup for a probe: the system's for names the bundle answers on, else c-ares's. */
function lookupFor({ retryRefusedMs, timeoutMs }) {
  return retryRefusedMs ? undefined : lookupWithin(timeoutMs);
}

// A probe with holdMs keeps a connection it opened for that long: one that is cut before then
// (reset, or closed without a byte: a relay that refused the flow once it had accepted it) did
// not reach a service.
function tcp(p) {
  const { host, port, timeoutMs, holdMs } = p;
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: host === "@gateway" ? gateway() : host,
      port,
      lookup: lookupFor(p),
      autoSelectFamily: false,
    });
    socket.once("connect", () => {
      if (!holdMs) {
        socket.destroy();
        resolve({ outcome: "connected" });
        return;
      }
      socket.once("data", () => {
        socket.destroy();
        resolve({ outcome: "connected" });
      });
      socket.once("end", () => reject(Object.assign(new Error("closed"), { code: "closed" })));
      setTimeout(() => {
        socket.destroy();
        resolve({ outcome: "connected" });
      }, holdMs).unref();
    });
    socket.once("error", reject);
    setTimeout(() => socket.destroy(), timeoutMs).unref();
  });
}

async function dns({ host, timeoutMs }) {
  const [address] = await new Resolver({ timeout: timeoutMs, tries: 1 }).resolve4(host);
  return { outcome: "connected", address };
}

function http(p) {
  const { host, port, path, timeoutMs } = p;
  return new Promise((resolve, reject) => {
    const options = { host, port, path, lookup: lookupFor(p), agent: false };
    const req = request({ ...options, method: "GET", autoSelectFamily: false }, (res) => {
      res.resume();
      const refusal = res.headers["x-bot-bottle-refusal"];
      resolve({
        outcome: "connected",
        status: res.statusCode,
        ...(typeof refusal === "string" ? { refusal } : {}),
      });
    });
    req.once("error", reject);
    req.end();
    setTimeout(() => req.destroy(), timeoutMs).unref();
  });
}

const kinds = { tcp, dns, http };
/** What a bundle that is still starting answers: nothing listens (yet) behind the port. */
const NOT_YET = ["ECONNREFUSED", "ECONNRESET"];
/** How often a probe the bundle must answer knocks again while the bundle is starting. */
const RETRY_EVERY_MS = 5;

async function attempt(run, p) {
  const until = performance.now() + (p.retryRefusedMs ?? 0);
  for (;;) {
    try {
      return await run(p);
    } catch (e) {
      if (!NOT_YET.includes(e?.code) || performance.now() >= until) throw e;
      await new Promise((resolve) => setTimeout(resolve, RETRY_EVERY_MS));
    }
  }
}

async function probe(p) {
  const run = kinds[p.kind];
  const r = run
    ? await withDeadline(
        Promise.resolve().then(() => attempt(run, p)),
        p.timeoutMs + (p.retryRefusedMs ?? 0),
      )
    : { outcome: "error", code: `ERROR unknown probe kind ${p.kind}` };
  return { name: p.name, ...r, ms: ms() };
}

const first = new Map(spec.probes.filter((p) => !p.afterAllowed).map((p) => [p, probe(p)]));
const allowedDone = Promise.all(
  spec.probes.filter((p) => p.retryRefusedMs).map((p) => first.get(p)),
);
const results = await Promise.all(
  spec.probes.map((p) => first.get(p) ?? allowedDone.then(() => probe(p))),
);
process.stdout.write(JSON.stringify({ results }) + "\n");
// A query still waiting in the resolver must not hold the program open past its deadline.
process.exit(0);

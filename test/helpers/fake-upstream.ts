/**
 * The fake HTTPS upstream of end-to-end egress tests (test/fixtures/fake-upstream.mjs), run in a
 * container of the test's own: a CA and a leaf for the names it stands in for, and what it
 * logged, read back with `docker logs`.
 */
import { join } from "node:path";
import { run } from "../../src/exec/run.js";
import { createCa } from "../../src/state/bottle-state.js";

/** One line of the fake upstream's log: a request, an upgrade, a WebSocket frame or message. */
export interface UpstreamEvent {
  event: "request" | "upgrade" | "ws-frame" | "ws-message" | "ws-close" | "ws-end" | "listening";
  method?: string;
  url?: string;
  host?: string;
  headers?: Record<string, string>;
  body?: string;
  text?: string;
  code?: number;
  reason?: string;
}

/** Everything the fake upstream in `container` logged, in order. */
export async function upstreamLog(container: string): Promise<UpstreamEvent[]> {
  const { stdout } = await run("docker", ["logs", container]);
  return stdout
    .split("\n")
    .filter((l) => l.startsWith('{"event":'))
    .map((l) => JSON.parse(l) as UpstreamEvent);
}

/**
 * A test CA (made the way a bottle's is: ca/ca.crt, ca/ca.key) and one leaf (leaf.crt,
 * leaf.key) for every name in `names`, in `dir`.
 */
export async function upstreamCerts(dir: string, names: readonly string[]): Promise<void> {
  await createCa(join(dir, "ca"), "test upstream");
  await run(
    "openssl",
    [
      "req",
      "-x509",
      "-CA",
      "ca/ca.crt",
      "-CAkey",
      "ca/ca.key",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "leaf.key",
      "-out",
      "leaf.crt",
      "-days",
      "2",
      "-subj",
      `/CN=${names[0] ?? "upstream"}`,
      "-addext",
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
    ],
    { cwd: dir },
  );
  // The upstream runs as root in its container, but the files must be readable there.
  await run("chmod", ["644", join(dir, "leaf.key")]);
}

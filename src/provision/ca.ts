/**
 * The bottle CA's certificate, installed in the agent through the Bottle handle: its own file
 * (named by NODE_EXTRA_CA_CERTS) and appended to the system bundle that curl, git, OpenSSL and
 * Python read. The agent gets the certificate only; the key stays in the state dir and the bundle.
 */
import { posix } from "node:path";
import type { Bottle } from "../backends/backend.js";
import { AGENT_CA_BUNDLE, AGENT_CA_CERT } from "../plan/egress.js";
import type { RootStep } from "./steps.js";

/** The install as a script of its own, for an `exec` that does more (start's cage self-test). */
export function caInstallStep(certPem: string): RootStep {
  if (!certPem.includes("BEGIN CERTIFICATE") || certPem.includes("PRIVATE KEY"))
    throw new Error("installCa takes one PEM certificate and nothing else");
  const script = [
    "set -e",
    `mkdir -p ${posix.dirname(AGENT_CA_CERT)}`,
    `printf '%s' "$BOT_BOTTLE_CA_CERT" > ${AGENT_CA_CERT}`,
    `chmod 644 ${AGENT_CA_CERT}`,
    `printf '\\n' >> ${AGENT_CA_BUNDLE}`,
    `cat ${AGENT_CA_CERT} >> ${AGENT_CA_BUNDLE}`,
  ].join("\n");
  return { what: "installing the bottle CA", script, env: { BOT_BOTTLE_CA_CERT: certPem } };
}

export async function installCa(bottle: Bottle, certPem: string): Promise<void> {
  const step = caInstallStep(certPem);
  await bottle.exec(["sh", "-c", step.script], { user: "root", env: step.env, timeoutMs: 15_000 });
}

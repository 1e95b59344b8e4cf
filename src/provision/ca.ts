/**
 * The bottle CA's certificate, installed in the agent through the Bottle handle: its own file
 * (named by NODE_EXTRA_CA_CERTS) and appended to the system bundle that curl, git, OpenSSL and
 * Python read. The agent gets the certificate only; the key stays in the state dir and the bundle.
 */
import type { Bottle } from "../backends/backend.js";
import { AGENT_CA_BUNDLE, AGENT_CA_CERT } from "../plan/egress.js";

export async function installCa(bottle: Bottle, certPem: string): Promise<void> {
  if (!certPem.includes("BEGIN CERTIFICATE") || certPem.includes("PRIVATE KEY"))
    throw new Error("installCa takes one PEM certificate and nothing else");
  const script = [
    "set -e",
    `mkdir -p "$(dirname ${AGENT_CA_CERT})"`,
    `cat > ${AGENT_CA_CERT}`,
    `chmod 644 ${AGENT_CA_CERT}`,
    `printf '\\n' >> ${AGENT_CA_BUNDLE}`,
    `cat ${AGENT_CA_CERT} >> ${AGENT_CA_BUNDLE}`,
  ].join("\n");
  await bottle.exec(["sh", "-c", script], { user: "root", input: certPem, timeoutMs: 15_000 });
}

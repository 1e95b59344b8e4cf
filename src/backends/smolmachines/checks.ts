/** Can this machine run smolmachines bottles? smolvm installed and working, and KVM usable. */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { CommandFailedError, CommandNotFoundError, run } from "../../exec/run.js";
import type { Check } from "../../shared/checks.js";
import { hasInterceptor, parseVersion } from "./smolvm.js";

/** The first line smolvm wrote on stderr, else the error's own. */
function reason(err: unknown): string {
  const text = err instanceof CommandFailedError && err.stderr.trim() ? err.stderr : String(err);
  return text.trim().split("\n")[0] ?? text;
}

const OPTIONAL =
  "optional: only the smolmachines (microVM) backend needs it; Docker bottles work without it";

/** smolvm's VMs need /dev/kvm, readable and writable by this user. */
export async function kvmCheck(device = "/dev/kvm"): Promise<Check> {
  try {
    await access(device, constants.R_OK | constants.W_OK);
    return { name: "kvm", status: "ok", detail: `${device} is usable` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      name: "kvm",
      status: "info",
      detail:
        code === "ENOENT"
          ? `${device} does not exist: no hardware virtualisation here`
          : `${device} is not usable by this user (${code ?? "error"})`,
      remedy:
        code === "ENOENT"
          ? `${OPTIONAL}; enable virtualisation (nested, on a VM) for it`
          : `${OPTIONAL}; add this user to the kvm group`,
    };
  }
}

export async function smolvmChecks(env: NodeJS.ProcessEnv): Promise<Check[]> {
  const kvm = await kvmCheck();
  try {
    const { stdout } = await run("smolvm", ["--version"], { env, timeoutMs: 10_000 });
    const line = stdout.trim().split("\n")[0] ?? "";
    const version = parseVersion(line);
    const route =
      version && hasInterceptor(version)
        ? "every VM flow goes through the bundle's egress interceptor"
        : "no egress interceptor: a VM reaches its bundle through smolvm's gateway, and the host's loopback with it";
    return [{ name: "smolvm", status: "ok", detail: `installed: ${line} (${route})` }, kvm];
  } catch (err) {
    return [
      {
        name: "smolvm",
        status: "info",
        detail:
          err instanceof CommandNotFoundError
            ? "not installed"
            : `installed but not working: ${reason(err)}`,
        remedy: OPTIONAL,
      },
      kvm,
    ];
  }
}

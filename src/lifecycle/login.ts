/**
 * Forwarding the operator's own login (`forward_host_credentials`): the template's login file is
 * read from the host, checked (present, complete, not expired) before anything is created, and
 * split into the tokens the bundle holds and the placeholder copy the agent gets.
 */
import { createHash } from "node:crypto";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseRotatedTokens, ROTATED_TOKENS_FILE } from "../shared/egress-config.js";
import { readMetadata } from "../state/bottle-state.js";
import type { BottlePlan } from "../backends/plan.js";
import { LoginProblem, type ForwardedLogin } from "../providers/provider.js";
import { loadProvider } from "../providers/templates.js";
import { BotBottleError, EXIT } from "../errors.js";

/** Something the host must provide before this bottle can start (a variable, a login). */
export class NotReadyError extends BotBottleError {
  constructor(message: string, hint: string) {
    super("prerequisite_missing", message, { exitCode: EXIT.usage, hint });
    this.name = "NotReadyError";
  }
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** Where the login came from, recorded at start: `stop` hands refreshed tokens back there. */
export interface LoginRecord {
  path: string;
  /** SHA-256 of the refresh token it held when the bottle started. */
  refreshSha256: string;
}

export async function forwardedLogin(
  plan: BottlePlan,
  env: NodeJS.ProcessEnv,
  now = new Date(),
): Promise<(ForwardedLogin & { record: LoginRecord }) | undefined> {
  if (!plan.agentContainer.login) return undefined;
  const login = (await loadProvider(plan.agent.template, env)).hostLogin;
  if (!login) throw new Error(`the ${plan.agent.template} template lost its host login`);
  const path = login.path(env, env["HOME"] || homedir());
  const text = await readFile(path, "utf8").catch(() => undefined);
  const field = `agents.${plan.agent.name}.forward_host_credentials`;
  if (text === undefined)
    throw new NotReadyError(
      `${field}: ${login.what} is not on this machine (no ${path})`,
      login.loginHint,
    );
  try {
    const forwarded = login.forward(text, now, {
      home: plan.agentContainer.home,
      workspace: plan.agentContainer.workdir,
    });
    return {
      ...forwarded,
      record: { path, refreshSha256: sha256(login.refreshToken(text) ?? "") },
    };
  } catch (err) {
    if (!(err instanceof LoginProblem)) throw err;
    throw new NotReadyError(`${field}: ${login.what} (${path}) ${err.message}`, login.loginHint);
  }
}

/**
 * After a bottle stops: when its bundle refreshed the forwarded login, the refresh used up the
 * refresh token in the operator's login file, so the tokens it left are written back there —
 * unless the file was refreshed on this machine meanwhile (then it is left as it is). The tokens
 * are then removed from the state dir. Says what it did; undefined when there was nothing to do.
 */
export async function returnLogin(
  stateDir: string,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  const meta = await readMetadata(stateDir);
  if (!meta?.login) return undefined;
  const file = join(stateDir, "audit", ROTATED_TOKENS_FILE);
  const text = await readFile(file, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const rotated = parseRotatedTokens(text, file);
    const login = (await loadProvider(meta.template, env)).hostLogin;
    if (!login) return undefined;
    const path = meta.login.path;
    const current = await readFile(path, "utf8").catch(() => undefined);
    if (
      current === undefined ||
      sha256(login.refreshToken(current) ?? "") !== meta.login.refreshSha256
    )
      return `${login.what} was refreshed in ${meta.slug}, but ${path} changed on this machine since: left as it is`;
    const next = login.writeBack(
      current,
      rotated.values,
      new Date(rotated.time),
      rotated.expiresIn,
    );
    const mode = (await stat(path)).mode & 0o777;
    const tmp = `${path}.bot-bottle-${process.pid}`;
    await writeFile(tmp, next, { mode });
    await rename(tmp, path);
    return `${login.what} was refreshed in ${meta.slug}: the new tokens are written back to ${path}`;
  } finally {
    await rm(file, { force: true });
  }
}

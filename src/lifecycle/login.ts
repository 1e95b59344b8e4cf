/**
 * Forwarding the operator's own login (`forward_host_credentials`): the template's login file is
 * read from the host, checked (present, complete, not expired) before anything is created, and
 * split into the tokens the bundle holds and the placeholder copy the agent gets.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
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

export async function forwardedLogin(
  plan: BottlePlan,
  env: NodeJS.ProcessEnv,
  now = new Date(),
): Promise<ForwardedLogin | undefined> {
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
    return login.forward(text, now, {
      home: plan.agentContainer.home,
      workspace: plan.agentContainer.workdir,
    });
  } catch (err) {
    if (!(err instanceof LoginProblem)) throw err;
    throw new NotReadyError(`${field}: ${login.what} (${path}) ${err.message}`, login.loginHint);
  }
}

/**
 * What a valid manifest still needs from this host before a bottle can start: the environment
 * variables it names, and the files it points at. Reported as warnings by `validate`; `start`
 * will refuse. Neither values nor paths from the file are printed — only where they are named.
 */
import { existsSync } from "node:fs";
import type { Manifest } from "./index.js";
import type { JsonPath } from "./problems.js";

export interface HostWarning {
  path: JsonPath;
  message: string;
}

export function hostWarnings(
  m: Manifest,
  env: NodeJS.ProcessEnv,
  exists: (path: string) => boolean = existsSync,
): HostWarning[] {
  const out: HostWarning[] = [];
  const bottle = ["bottles", m.bottle.name] as const;
  const unset =
    "names an environment variable that is not set in this shell — `start` will refuse until it is";
  const missing = "names a file that does not exist (paths are relative to the manifest's folder)";
  m.bottle.egress.routes.forEach((r, i) => {
    if (r.auth && !env[r.auth.token_env])
      out.push({ path: [...bottle, "egress", "routes", i, "auth", "token_env"], message: unset });
  });
  if (m.bottle.egress.trust_ca && !exists(m.bottle.egress.trust_ca))
    out.push({ path: [...bottle, "egress", "trust_ca"], message: missing });
  m.bottle.git.forEach((g, i) => {
    const at = [...bottle, "git", i] as const;
    if (g.token_env && !env[g.token_env]) out.push({ path: [...at, "token_env"], message: unset });
    switch (g.key?.provider) {
      case undefined:
        break;
      case "static":
        if (!exists(g.key.path)) out.push({ path: [...at, "key", "path"], message: missing });
        break;
      case "gitea":
        if (!env[g.key.provisioner_token_env])
          out.push({ path: [...at, "key", "provisioner_token_env"], message: unset });
        break;
    }
  });
  const agent = ["agents", m.agent.name] as const;
  m.agent.skills?.forEach((s, i) => {
    if (!exists(s)) out.push({ path: [...agent, "skills", i], message: missing });
  });
  if (m.agent.dockerfile && !exists(m.agent.dockerfile))
    out.push({ path: [...agent, "dockerfile"], message: missing });
  if (m.bottle.dockerfile && !exists(m.bottle.dockerfile))
    out.push({ path: [...bottle, "dockerfile"], message: missing });
  return out;
}

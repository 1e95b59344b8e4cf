/**
 * A bottle's Gitea deploy keys, from the host: the gate deletes its keys when it stops, but a
 * bundle that was killed cannot, so `stop` makes sure and `cleanup` deletes those of bottles that
 * are gone. The keys are found by the title that carries the slug, with the token from the
 * operator's environment; the state dir records when they are gone.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { deleteDeployKeys } from "../shared/gitea.js";
import { readMetadata, updateMetadata } from "../state/bottle-state.js";

/** Deletes the bottle's deploy keys still registered; says what happened (undefined: none). */
export async function removeDeployKeys(
  stateDir: string,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  const meta = await readMetadata(stateDir);
  const keys = meta?.deployKeys;
  if (!meta || !keys || keys.length === 0 || meta.deployKeysRemoved) return undefined;
  const ca = await readFile(join(stateDir, "bundle", "trust-ca.pem"), "utf8").catch(
    () => undefined,
  );
  const problems: string[] = [];
  let deleted = 0;
  for (const k of keys) {
    const token = env[k.tokenEnv];
    if (!token) {
      problems.push(
        `the deploy key "${k.title}" on ${k.repo} may be left: set $${k.tokenEnv} and run \`bot-bottle cleanup\``,
      );
      continue;
    }
    try {
      deleted += await deleteDeployKeys(
        { apiUrl: k.apiUrl, repo: k.repo, token, extraHosts: k.extraHosts, ...(ca ? { ca } : {}) },
        k.title,
      );
    } catch (err) {
      problems.push(
        `the deploy key "${k.title}" on ${k.repo} could not be deleted: ${(err as Error).message} — \`bot-bottle cleanup\` tries again`,
      );
    }
  }
  if (problems.length === 0) await updateMetadata(stateDir, { deployKeysRemoved: true });
  if (problems.length > 0) return problems.join("\n");
  return deleted > 0
    ? `deleted ${deleted} deploy key${deleted === 1 ? "" : "s"} the bundle left on ${[...new Set(keys.map((k) => k.repo))].join(", ")}`
    : undefined;
}

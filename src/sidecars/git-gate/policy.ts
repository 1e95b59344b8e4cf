/**
 * Which ref updates a push may make: the entry's ref patterns, and deletions and forced moves only
 * where the entry allows them. Pure: the caller says which updates are fast-forwards.
 */
import type { GitPushPolicy, GitRefUpdate } from "../../shared/git-gate-config.js";
import { ZERO } from "./gate.js";

/** A ref pattern as a regular expression: `*` within one path segment, `**` across segments. */
export function refPattern(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "*" && pattern[i + 1] === "*") {
      source += ".*";
      i++;
    } else if (c === "*") source += "[^/]*";
    else source += c.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

export interface RefVerdict {
  update: GitRefUpdate;
  /** Why the update is refused; absent when it is allowed. */
  refused?: string;
}

/** Each update judged against the policy; `fastForward(u)` says whether u keeps its old commit. */
export function judgeUpdates(
  policy: GitPushPolicy,
  updates: readonly GitRefUpdate[],
  fastForward: (u: GitRefUpdate) => boolean,
): RefVerdict[] {
  const patterns = policy.refs.map(refPattern);
  return updates.map((update) => {
    if (!patterns.some((p) => p.test(update.ref)))
      return {
        update,
        refused:
          policy.refs.length === 0
            ? "this repository takes no pushes (its git entry's push.refs is empty)"
            : `${update.ref} is not among the refs this repository takes (${policy.refs.join(", ")})`,
      };
    if (ZERO.test(update.new))
      return policy.delete
        ? { update }
        : { update, refused: `deleting ${update.ref} is not allowed (push.delete is off)` };
    if (!ZERO.test(update.old) && !fastForward(update) && !policy.force)
      return {
        update,
        refused: `${update.ref} would lose commits (a forced push; push.force is off): fetch, rebase or merge, and push again`,
      };
    return { update };
  });
}

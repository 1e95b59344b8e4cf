/**
 * Which daemons of a re-read init config init starts: those it does not run yet, matched by name.
 * Plain data in, plain data out.
 */
import type { DaemonSpec } from "../../shared/init-config.js";

/**
 * The specs in `listed` whose name is not in `running`, in the file's order; a name the file
 * lists twice is started once, as its first entry says.
 */
export function addedDaemons(
  running: readonly string[],
  listed: readonly DaemonSpec[],
): DaemonSpec[] {
  const names = new Set(running);
  const added: DaemonSpec[] = [];
  for (const spec of listed) {
    if (names.has(spec.name)) continue;
    names.add(spec.name);
    added.push(spec);
  }
  return added;
}

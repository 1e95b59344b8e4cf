/**
 * A live change to a running bottle's bundle: its new config is written into the bundle's config
 * folder, the bundle gets SIGHUP (init forwards it to the daemons that reload, and starts any it
 * now lists), and the change counts only once the daemon says it took it — or fails with the
 * daemon's own reason, its previous config still in force.
 */
import type { Backend, BundleEvent, Resource } from "../backends/backend.js";
import { BotBottleError, EXIT } from "../errors.js";

export class ReloadError extends BotBottleError {
  constructor(message: string, hint: string) {
    super("command_failed", message, { exitCode: EXIT.internal, hint });
    this.name = "ReloadError";
  }
}

/**
 * Runs `write` (the new config), signals the bundle, and waits up to `deadlineMs` for an event of
 * `component`: `took` it, or `failed` (whose message `refused` words for the operator).
 */
export async function reloadBundle(
  backend: Backend,
  resources: readonly Resource[],
  slug: string,
  options: {
    write: () => Promise<void>;
    component: string;
    what: string;
    took: (event: BundleEvent) => boolean;
    failed: (event: BundleEvent) => boolean;
    refused: (message: string) => string;
    deadlineMs: number;
  },
): Promise<void> {
  const hint = `\`bot-bottle logs ${slug}\` shows the bundle's log`;
  const since = new Date(Date.now() - 1000).toISOString();
  await options.write();
  await backend.signalBundle(resources, "HUP");
  const event = await backend
    .bundleEvent(
      resources,
      (e) => e["component"] === options.component && (options.took(e) || options.failed(e)),
      { deadlineMs: options.deadlineMs, what: options.what, since },
    )
    .catch((err: unknown) => {
      throw new ReloadError(err instanceof Error ? err.message : String(err), hint);
    });
  if (!options.took(event)) throw new ReloadError(options.refused(String(event["message"])), hint);
}

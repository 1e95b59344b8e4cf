/**
 * The dashboard running: the state of model.ts drawn by view.ts, kept fresh from source.ts, and
 * each decision key carried out by the lifecycle call its command makes (`approve`, `deny`,
 * `answer`), its outcome or its error shown on the status line.
 */
import { render, useApp, useInput, useStdout } from "ink";
import { createElement as h, useCallback, useEffect, useRef, useState } from "react";
import type { Backend } from "../backends/backend.js";
import { BotBottleError, UsageError } from "../errors.js";
import { answerRequest, approveRequest, denyRequest, leaseText } from "../lifecycle/requests.js";
import { stopBottle, type BottleSummary } from "../lifecycle/bottles.js";
import { bottleLogs } from "../lifecycle/logs.js";
import { visible } from "../shared/visible.js";
import {
  initialState,
  press,
  selectedBottle,
  withData,
  type DashboardState,
  type Effect,
} from "./model.js";
import { LISTING_INTERVAL_MS, loadAudit, loadData, StateWatcher } from "./source.js";
import { Dashboard } from "./view.js";

/** How often the logs view asks the engine for the logs again. */
const LOGS_EVERY_MS = 2_000;

export interface DashboardOptions {
  env: NodeJS.ProcessEnv;
  backends: readonly Backend[];
  /** False when NO_COLOR is set: meaning is carried by marks and words alone. */
  color: boolean;
}

/** An error as one status line: the message and its hint, never a stack. */
function errorText(err: unknown): string {
  if (err instanceof BotBottleError) return err.hint ? `${err.message} (${err.hint})` : err.message;
  return err instanceof Error ? err.message : String(err);
}

/** What the status line says while an effect is carried out. */
function underWay(effect: Exclude<Effect, { kind: "quit" }>): string {
  switch (effect.kind) {
    case "approve":
      return `approving ${effect.id}…`;
    case "deny":
      return `denying ${effect.id}…`;
    case "answer":
      return `answering ${effect.id}…`;
    case "stop":
      return `stopping ${effect.slug}…`;
  }
}

/** Carries out a decision or a stop; the line the status bar shows for it. */
async function decide(effect: Exclude<Effect, { kind: "quit" }>, options: DashboardOptions) {
  const { env, backends } = options;
  switch (effect.kind) {
    case "approve": {
      const done = await approveRequest({
        env,
        id: effect.id,
        backends,
        ...(effect.for !== undefined ? { for: effect.for } : {}),
      });
      const lease =
        done.seconds !== undefined && done.until ? ` ${leaseText(done.seconds, done.until)}` : "";
      return `approved ${done.id} of ${done.slug}${lease}${done.decision.applied ? `: ${visible(done.decision.applied)}` : ""}`;
    }
    case "deny": {
      const done = await denyRequest({
        env,
        id: effect.id,
        ...(effect.reason ? { reason: effect.reason } : {}),
      });
      return `denied ${done.id} of ${done.slug}`;
    }
    case "answer": {
      const done = await answerRequest({ env, id: effect.id, text: effect.text });
      return `answered ${done.id} of ${done.slug}`;
    }
    case "stop": {
      const stopped = await stopBottle(backends, effect.slug, env);
      return `stopped ${stopped.slug}: its logs are kept in ${stopped.stateDir}`;
    }
  }
}

function App(props: DashboardOptions) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [size, setSize] = useState({ width: stdout.columns || 80, height: stdout.rows || 24 });
  const [state, setState] = useState<DashboardState>(initialState);
  const current = useRef(state);
  current.current = state;
  const [changes, setChanges] = useState(0);
  const watcher = useRef<StateWatcher | undefined>(undefined);

  // Reads may overlap (a change, the listing's tick, a decision's end): only the latest counts.
  const reads = useRef(0);
  const listed = useRef<BottleSummary[] | undefined>(undefined);
  /** Reads the files again, and the engine's listing too when `engine` (or none was read yet). */
  const refresh = useCallback(
    async (engine: boolean) => {
      const read = ++reads.current;
      try {
        const data = await loadData(props.backends, props.env, engine ? undefined : listed.current);
        if (read !== reads.current) return;
        listed.current = data.bottles.map((b) => b.summary);
        watcher.current?.watchDirs(listed.current.map((b) => b.stateDir));
        setState((s) => withData(s, data.bottles, data.requests));
        setChanges((n) => n + 1);
      } catch (err) {
        if (read === reads.current)
          setState((s) => ({ ...s, status: { text: errorText(err), error: true } }));
      }
    },
    [props.backends, props.env],
  );

  useEffect(() => {
    const w = new StateWatcher(props.env, (bottles) => void refresh(bottles));
    watcher.current = w;
    void refresh(true);
    const listing = setInterval(() => void refresh(true), LISTING_INTERVAL_MS);
    const resize = () => setSize({ width: stdout.columns || 80, height: stdout.rows || 24 });
    stdout.on("resize", resize);
    return () => {
      w.close();
      clearInterval(listing);
      stdout.off("resize", resize);
    };
  }, [props.env, refresh, stdout]);

  // The selected bottle's audit (or its logs, in that view), read again at each change.
  const logsRead = useRef({ slug: "", at: 0 });
  const chosen = selectedBottle(state)?.summary;
  const stateDir = chosen?.stateDir;
  const slug = chosen?.slug;
  const view = state.view;
  useEffect(() => {
    if (stateDir === undefined || slug === undefined) return;
    let live = true;
    const still = (s: DashboardState) =>
      live && s.view === view && selectedBottle(s)?.summary.slug === slug;
    // The logs are the engine's to give: read at most every LOGS_EVERY_MS, however busy the audit.
    const last = logsRead.current;
    if (view === "logs" && last.slug === slug && Date.now() - last.at < LOGS_EVERY_MS) return;
    if (view === "logs") logsRead.current = { slug, at: Date.now() };
    if (view === "logs")
      bottleLogs(props.backends, slug, props.env).then(
        (logs) => setState((s) => (still(s) ? { ...s, logs: logs ?? [] } : s)),
        () => undefined,
      );
    else
      loadAudit(stateDir).then(
        (audit) => setState((s) => (still(s) ? { ...s, audit } : s)),
        () => undefined,
      );
    return () => {
      live = false;
    };
  }, [stateDir, slug, view, changes, props.backends, props.env]);

  useInput((input, key) => {
    const { state: next, effect } = press(current.current, input, key);
    // Keys can come faster than frames (a paste): the next one builds on this one's state.
    current.current = next;
    setState(next);
    if (!effect) return;
    if (effect.kind === "quit") {
      exit();
      return;
    }
    setState((s) => ({ ...s, status: { text: underWay(effect), error: false } }));
    decide(effect, props)
      .then(
        (text) => setState((s) => ({ ...s, status: { text, error: false } })),
        (err: unknown) =>
          setState((s) => ({ ...s, status: { text: errorText(err), error: true } })),
      )
      .finally(() => void refresh(true));
  });

  return h(Dashboard, { state, ...size, color: props.color, now: new Date() });
}

/** Runs the dashboard on this terminal until `q` (or ctrl-c). */
export async function runDashboard(
  options: DashboardOptions & {
    stdin: NodeJS.ReadStream;
    stdout: NodeJS.WriteStream;
  },
): Promise<void> {
  if (!options.stdin.isTTY || !options.stdout.isTTY)
    throw new UsageError(
      "the dashboard needs a terminal: its input and output are not one",
      "run it in a terminal; `bot-bottle ls` and `bot-bottle requests` print the same for programs",
    );
  const instance = render(
    h(App, { env: options.env, backends: options.backends, color: options.color }),
    {
      stdin: options.stdin,
      stdout: options.stdout,
      exitOnCtrlC: true,
    },
  );
  await instance.waitUntilExit();
}

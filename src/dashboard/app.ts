/**
 * The dashboard running: the state of model.ts drawn by view.ts, kept fresh from source.ts, and
 * each key's effect carried out by the lifecycle call its command makes (`approve`, `deny`,
 * `answer`, `stop`; `start`'s prepare, preflight and launch; `attach`), its outcome or its error
 * shown on the status line.
 */
import { render, useApp, useInput, useStdout } from "ink";
import { createElement as h, useCallback, useEffect, useRef, useState } from "react";
import type { Backend } from "../backends/backend.js";
import { openBackend } from "../backends/index.js";
import type { BottlePlan } from "../backends/plan.js";
import { BotBottleError, UsageError } from "../errors.js";
import type { ManifestIndex } from "../manifest/index.js";
import { describePlan, planNotes } from "../plan/summary.js";
import type { Progress } from "../shared/progress.js";
import { launch, preflight, prepare } from "../lifecycle/start.js";
import { attachSession, bottleSession, openSession } from "../lifecycle/session.js";
import { answerRequest, approveRequest, denyRequest, leaseText } from "../lifecycle/requests.js";
import { stopBottle, type BottleSummary } from "../lifecycle/bottles.js";
import { bottleLogs } from "../lifecycle/logs.js";
import { visible } from "../shared/visible.js";
import { attachInTmuxWindow, insideTmux } from "./attach.js";
import {
  initialState,
  press,
  progressed,
  selectedBottle,
  starting,
  withData,
  type DashboardState,
  type Effect,
  type StartView,
} from "./model.js";
import {
  EgressWindow,
  FILES_INTERVAL_MS,
  LISTING_INTERVAL_MS,
  loadAudit,
  loadData,
  ReadOrder,
  StateWatcher,
} from "./source.js";
import { Dashboard } from "./view.js";

/** How often the logs view asks the engine for the logs again. */
const LOGS_EVERY_MS = 2_000;

export interface DashboardOptions {
  env: NodeJS.ProcessEnv;
  backends: readonly Backend[];
  /** False when NO_COLOR is set: meaning is carried by marks and words alone. */
  color: boolean;
  /** Reads the manifest (again at each `n`: it may have changed since). */
  manifest: () => Promise<ManifestIndex>;
  /** The folder bottles started with `n` work in. */
  workspace: string;
}

/** Why the dashboard left the screen: to attach this terminal, or to abandon a start and quit. */
type Leave = { kind: "attach"; slug: string } | { kind: "abandon"; slug: string };

/** The decisions and the stop: the effects carried out with the commands' own calls. */
type Decision = Extract<Effect, { kind: "approve" | "deny" | "answer" | "stop" }>;

/** An error as one status line: the message and its hint, never a stack. */
function errorText(err: unknown): string {
  if (err instanceof BotBottleError) return err.hint ? `${err.message} (${err.hint})` : err.message;
  return err instanceof Error ? err.message : String(err);
}

/** What the status line says while an effect is carried out. */
function underWay(effect: Decision): string {
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
async function decide(effect: Decision, options: DashboardOptions) {
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

/** A start's progress reported into its StartView. */
function startProgress(update: (change: (v: StartView) => StartView) => void): Progress {
  return {
    step: (text) => update((v) => progressed(v, "step", text)),
    detail: (text) => update((v) => progressed(v, "detail", text)),
    done: (text) => update((v) => progressed(v, "done", text)),
    warn: (text) => update((v) => progressed(v, "warn", text)),
  };
}

function App(
  props: DashboardOptions & {
    initial: DashboardState;
    /** The bottle whose start is under way, for runDashboard to remove if it is told to end. */
    starting: { slug?: string | undefined };
    /** Called with the state as the dashboard leaves the screen (kept for its return). */
    leave: (state: DashboardState) => void;
  },
) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [size, setSize] = useState({ width: stdout.columns || 80, height: stdout.rows || 24 });
  const [state, setState] = useState<DashboardState>(props.initial);
  const current = useRef(state);
  current.current = state;
  const [changes, setChanges] = useState(0);
  const watcher = useRef<StateWatcher | undefined>(undefined);

  // Reads overlap (a file change, an engine event, a decision's end): ReadOrder says which count.
  const [reads] = useState(() => new ReadOrder<BottleSummary[]>());
  const [egress] = useState(() => new EgressWindow());
  /** Reads the files again, and the engine's listing too when `engine` (or none was read yet). */
  const refresh = useCallback(
    async (engine: boolean) => {
      const read = reads.begin(engine);
      try {
        const data = await loadData(props.backends, props.env, egress, read.known);
        if (!read.counts()) return;
        read.landed(data.bottles.map((b) => b.summary));
        watcher.current?.watchDirs(data.bottles.map((b) => b.summary.stateDir));
        setState((s) => withData(s, data.bottles, data.requests));
        setChanges((n) => n + 1);
      } catch (err) {
        if (read.counts())
          setState((s) => ({ ...s, status: { text: errorText(err), error: true } }));
      }
    },
    [props.backends, props.env, reads, egress],
  );

  useEffect(() => {
    const w = new StateWatcher(props.env, (bottles) => void refresh(bottles));
    watcher.current = w;
    const engines = props.backends.map((b) => b.watch(() => void refresh(true)));
    void refresh(true);
    const files = setInterval(() => void refresh(false), FILES_INTERVAL_MS);
    const listing = setInterval(() => void refresh(true), LISTING_INTERVAL_MS);
    const resize = () => setSize({ width: stdout.columns || 80, height: stdout.rows || 24 });
    stdout.on("resize", resize);
    return () => {
      w.close();
      for (const e of engines) e.close();
      clearInterval(files);
      clearInterval(listing);
      stdout.off("resize", resize);
    };
  }, [props.env, props.backends, refresh, stdout]);

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

  const say = useCallback(
    (text: string, error = false) => setState((s) => ({ ...s, status: { text, error } })),
    [],
  );
  const failed = useCallback((err: unknown) => say(errorText(err), true), [say]);

  // `n`: the manifest's agents, then the chosen one's plan (kept here until `y` or the next `n`).
  const planned = useRef<{ plan: BottlePlan; agent: string } | undefined>(undefined);
  const pickAgent = useCallback(async () => {
    say("reading the manifest…");
    const index = await props.manifest();
    const agents = index.agentNames;
    if (agents.length === 0)
      return say(`${index.file} declares no agents: add one, then press n again`, true);
    setState((s) => {
      const next = {
        ...s,
        modal: { kind: "agents" as const, agents, at: 0, workspace: props.workspace },
      };
      delete next.status;
      return next;
    });
  }, [props, say]);

  const showPlan = useCallback(
    async (agent: string) => {
      say(`planning a bottle for ${agent}…`);
      const manifest = (await props.manifest()).select(agent);
      const plan = await prepare({ manifest, workspace: props.workspace, env: props.env });
      await preflight(manifest, plan, props.env, props.backends);
      planned.current = { plan, agent };
      const lines = [...describePlan(plan), ...planNotes(plan).map((n) => `note: ${n}`)];
      setState((s) => {
        const next = {
          ...s,
          modal: { kind: "plan" as const, agent, slug: plan.slug, lines, top: 0 },
        };
        delete next.status;
        return next;
      });
    },
    [props, say],
  );

  const startPlanned = useCallback(
    async (slug: string) => {
      const chosen = planned.current;
      planned.current = undefined;
      if (chosen?.plan.slug !== slug)
        return say(`${slug} is no longer planned: press n again`, true);
      const { plan, agent } = chosen;
      const update = (change: (v: StartView) => StartView) =>
        setState((s) => (s.start?.slug === slug ? { ...s, start: change(s.start) } : s));
      setState((s) => ({
        ...s,
        start: { agent, slug, lines: [] },
        status: { text: `starting ${slug}…`, error: false },
      }));
      props.starting.slug = slug;
      try {
        const bottle = await launch(plan, {
          backend: openBackend(plan.backend, props.env),
          progress: startProgress(update),
          env: props.env,
        });
        const a = plan.agentContainer;
        await openSession(bottle, { argv: a.attach, workdir: a.workdir, user: a.user });
        update((v) => ({ ...v, outcome: "ready" }));
        await refresh(true);
        // The new bottle is selected; its audit takes the start's place.
        setState((s) => {
          const next = {
            ...s,
            bottle: slug,
            audit: [],
            status: { text: `started ${slug}: ⏎ attaches to its agent`, error: false },
          };
          delete next.start;
          return next;
        });
      } catch (err) {
        update((v) => ({ ...v, outcome: "failed" }));
        failed(err);
      } finally {
        props.starting.slug = undefined;
      }
    },
    [props, say, failed, refresh],
  );

  const attach = useCallback(
    async (slug: string) => {
      if (insideTmux(props.env)) {
        await attachInTmuxWindow(slug, props.env);
        return say(
          `${slug}'s agent is in the tmux window "${slug}"; detaching (ctrl-b d) closes it`,
        );
      }
      const start = starting(current.current);
      if (start)
        return say(
          `${start.slug} is starting: attach once it is ready (inside tmux, ⏎ opens a window instead)`,
          true,
        );
      props.leave(current.current);
      exit({ kind: "attach", slug } satisfies Leave);
    },
    [props, say, exit],
  );

  useInput((input, key) => {
    const { state: next, effect } = press(current.current, input, key);
    // Keys can come faster than frames (a paste): the next one builds on this one's state.
    current.current = next;
    setState(next);
    if (!effect) return;
    switch (effect.kind) {
      case "quit":
        props.leave(next);
        exit(
          effect.abandon ? ({ kind: "abandon", slug: effect.abandon } satisfies Leave) : undefined,
        );
        return;
      case "agents":
        pickAgent().catch(failed);
        return;
      case "plan":
        showPlan(effect.agent).catch(failed);
        return;
      case "start":
        void startPlanned(effect.slug);
        return;
      case "attach":
        attach(effect.slug).catch(failed);
        return;
      case "approve":
      case "deny":
      case "answer":
      case "stop":
        say(underWay(effect));
        decide(effect, props)
          .then((text) => say(text), failed)
          .finally(() => void refresh(true));
    }
  });

  return h(Dashboard, { state, ...size, color: props.color, now: new Date() });
}

/** Runs the dashboard on this terminal until `q` (or ctrl-c). */
export async function runDashboard(
  options: DashboardOptions & {
    stdin: NodeJS.ReadStream;
    stdout: NodeJS.WriteStream;
    stderr: NodeJS.WriteStream;
  },
): Promise<void> {
  const { stdin, stdout, stderr } = options;
  if (!stdin.isTTY || !stdout.isTTY)
    throw new UsageError(
      "the dashboard needs a terminal: its input and output are not one",
      "run it in a terminal; `bot-bottle ls` and `bot-bottle requests` print the same for programs",
    );
  // A start under way when the dashboard is told to end is removed, as `start` does on ctrl-c.
  const starting: { slug?: string | undefined } = {};
  const abandon = (signal: NodeJS.Signals) => {
    const slug = starting.slug;
    if (!slug) process.exit(128 + (signal === "SIGTERM" ? 15 : 1));
    stderr.write(`bot-bottle: ${signal} during the start of ${slug}; removing it\n`);
    void stopBottle(options.backends, slug, options.env)
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.on("SIGTERM", abandon);
  process.on("SIGHUP", abandon);
  try {
    let state = initialState;
    for (;;) {
      let left = state;
      const instance = render(
        h(App, {
          ...options,
          starting,
          initial: state,
          leave: (s: DashboardState) => (left = s),
        }),
        { stdin, stdout, stderr, exitOnCtrlC: false },
      );
      const leave = (await instance.waitUntilExit()) as Leave | undefined;
      if (leave?.kind === "abandon") {
        stderr.write(`bot-bottle: the start of ${leave.slug} was abandoned; removing it\n`);
        await stopBottle(options.backends, leave.slug, options.env).catch(() => undefined);
        process.exitCode = 130;
        return;
      }
      if (leave?.kind !== "attach") return;
      state = await attachHere(leave.slug, left, options);
    }
  } finally {
    process.off("SIGTERM", abandon);
    process.off("SIGHUP", abandon);
  }
}

/**
 * This terminal on the bottle's agent session, the dashboard off screen meanwhile; the state it
 * comes back to says how the session ended. The selection waits as after any move: the screen
 * was away, and what it showed may have changed.
 */
async function attachHere(
  slug: string,
  left: DashboardState,
  options: DashboardOptions & { stdout: NodeJS.WriteStream },
): Promise<DashboardState> {
  const back = { ...left, movedAt: Date.now() };
  delete back.prompt;
  delete back.modal;
  options.stdout.write("\x1b[2J\x1b[H");
  try {
    const { bottle, spec } = await bottleSession(options.backends, slug);
    const outcome = await attachSession(bottle, spec, {
      isTTY: true,
      term: options.env["TERM"],
    });
    options.stdout.write("\x1b[2J\x1b[H");
    const text =
      outcome === "detached"
        ? `detached from ${slug}: it keeps running`
        : `${slug}'s agent session ended; the bottle still runs (s stops it)`;
    return { ...back, status: { text, error: false } };
  } catch (err) {
    options.stdout.write("\x1b[2J\x1b[H");
    return { ...back, status: { text: errorText(err), error: true } };
  }
}

/**
 * The dashboard's state and what each key does to it, as pure functions: a key gives a new state
 * and, for a decision, the effect to carry out (app.ts runs it through the same lifecycle calls
 * as `approve`, `deny` and `answer`). Nothing here touches the engine, the files or the screen.
 */
import type { BottleSummary } from "../lifecycle/bottles.js";
import type { BottleRequest } from "../lifecycle/requests.js";
import type { LogLine } from "../lifecycle/logs.js";
import type { AuditEntry } from "../state/audit.js";
import { visible } from "../shared/visible.js";

export type Panel = "bottles" | "requests" | "audit";
export const PANELS: readonly Panel[] = ["bottles", "requests", "audit"];

/** A bottle and its egress decisions of the last minute. */
export interface BottleRow {
  summary: BottleSummary;
  egress: { allowed: number; refused: number };
}

/**
 * A line the operator is typing: a lease for `A`, a reason for `d`, an answer for `r` (`id`: the
 * request's); or the confirmation `s` asks for (`id`: the bottle's slug), which only `y` gives.
 */
export interface Prompt {
  kind: "lease" | "deny" | "answer" | "stop";
  id: string;
  text: string;
}

/**
 * A window over the lower panels that takes every key while open: `n`'s agent picker, then the
 * plan of the chosen agent (the preflight summary `start` prints), which only `y` starts.
 */
export type Modal =
  | { kind: "agents"; agents: readonly string[]; at: number; workspace: string }
  | { kind: "plan"; agent: string; slug: string; lines: readonly string[]; top: number };

/** A start the dashboard runs: its progress lines, as `start` prints them, until it ends. */
export interface StartView {
  agent: string;
  slug: string;
  lines: string[];
  /** How the current step is getting on (an image build's last line). */
  detail?: string;
  /** Set once it ended: "ready", or "failed" (its lines stay shown until escape or the next `n`). */
  outcome?: "ready" | "failed";
}

export interface DashboardState {
  bottles: BottleRow[];
  /** Every running bottle's requests, pending first, each group newest first. */
  requests: BottleRequest[];
  /** The selected bottle's audit trail, oldest first. */
  audit: AuditEntry[];
  /** What the lower panel shows of the selected bottle: its audit, or (`l`) its logs. */
  view: "audit" | "logs";
  /** The selected bottle's logs, as `bot-bottle logs` shows them, while the view is "logs". */
  logs: LogLine[];
  focus: Panel;
  /** The selected bottle's slug. */
  bottle?: string;
  /** The selected request's id; when none is (or it was decided), the first pending one. */
  request?: string;
  /** The operator moved the request selection: it stays where it is until a decision. */
  pinned?: boolean;
  /** When the request selection last moved by itself (a new listing), in ms since the epoch. */
  movedAt?: number;
  prompt?: Prompt;
  modal?: Modal;
  start?: StartView;
  /** A ctrl-c was pressed while a start is under way: the next one abandons it. */
  abandonAsked?: boolean;
  /** The outcome of the last decision, or why a key did nothing. */
  status?: { text: string; error: boolean };
}

export type Effect =
  | { kind: "approve"; id: string; for?: string }
  | { kind: "deny"; id: string; reason?: string }
  | { kind: "answer"; id: string; text: string }
  | { kind: "stop"; slug: string }
  /** `n`: read the manifest's agents for the picker. */
  | { kind: "agents" }
  /** The picked agent's plan and preflight, for the plan modal. */
  | { kind: "plan"; agent: string }
  /** `y` on the plan: start the planned bottle. */
  | { kind: "start"; slug: string }
  /** `enter`: this terminal on the bottle's agent session. */
  | { kind: "attach"; slug: string }
  /** `q`, or ctrl-c; `abandon`: the bottle whose start is under way, to remove first. */
  | { kind: "quit"; abandon?: string };

/** What ink reports of a key press, the part the dashboard reads. */
export interface Key {
  upArrow?: boolean;
  downArrow?: boolean;
  return?: boolean;
  escape?: boolean;
  tab?: boolean;
  shift?: boolean;
  backspace?: boolean;
  delete?: boolean;
  ctrl?: boolean;
  meta?: boolean;
}

export const initialState: DashboardState = {
  bottles: [],
  requests: [],
  audit: [],
  view: "audit",
  logs: [],
  focus: "bottles",
};

const newest = (a: BottleRequest, b: BottleRequest) => Date.parse(b.time) - Date.parse(a.time);

/** Pending first, then the decided; each newest first. */
export function orderRequests(requests: readonly BottleRequest[]): BottleRequest[] {
  const pending = requests.filter((r) => r.status === "pending").sort(newest);
  const decided = requests.filter((r) => r.status !== "pending").sort(newest);
  return [...pending, ...decided];
}

/** The request a decision key acts on: the selected one, else the first pending. */
export function selectedRequest(state: DashboardState): BottleRequest | undefined {
  const chosen = state.requests.find((r) => r.id === state.request);
  return chosen ?? state.requests.find((r) => r.status === "pending");
}

export function selectedBottle(state: DashboardState): BottleRow | undefined {
  return state.bottles.find((b) => b.summary.slug === state.bottle) ?? state.bottles[0];
}

/** New listings: the selections stay where they were while their rows exist. */
export function withData(
  state: DashboardState,
  bottles: BottleRow[],
  requests: readonly BottleRequest[],
  now = Date.now(),
): DashboardState {
  const ordered = orderRequests(requests);
  const bottle = bottles.some((b) => b.summary.slug === state.bottle)
    ? state.bottle
    : bottles[0]?.summary.slug;
  // The selection stays on a pending request while it waits, and on any request the operator
  // moved to; otherwise (decided since, or gone) it goes to the first pending one, if any.
  const kept = ordered.find((r) => r.id === state.request);
  const firstPending = ordered.find((r) => r.status === "pending")?.id;
  const stays = kept !== undefined && (kept.status === "pending" || state.pinned === true);
  const request = stays ? kept.id : (firstPending ?? kept?.id);
  const next: DashboardState = { ...state, bottles, requests: ordered };
  if (bottle === undefined) delete next.bottle;
  else next.bottle = bottle;
  if (request === undefined) delete next.request;
  else next.request = request;
  if (request !== undefined && request !== state.request) next.movedAt = now;
  return next;
}

function move<T>(items: readonly T[], current: number, by: number): T | undefined {
  if (items.length === 0) return undefined;
  const at = current < 0 ? 0 : Math.min(items.length - 1, Math.max(0, current + by));
  return items[at];
}

function moveSelection(state: DashboardState, by: number): DashboardState {
  if (state.focus === "requests") {
    const at = state.requests.findIndex((r) => r.id === selectedRequest(state)?.id);
    const next = move(state.requests, at, by);
    return next ? { ...state, request: next.id, pinned: true } : state;
  }
  const at = state.bottles.findIndex((b) => b.summary.slug === selectedBottle(state)?.summary.slug);
  const next = move(state.bottles, at, by);
  return next ? { ...state, bottle: next.summary.slug, audit: [] } : state;
}

const say = (state: DashboardState, text: string, error = true): { state: DashboardState } => ({
  state: { ...state, status: { text, error } },
});

/**
 * How long a decision key waits after the selection moved by itself. An agent that times a new
 * request to land as the operator presses `a` (the one being read was decided elsewhere, or timed
 * out, a moment before) would otherwise have its own request approved unseen.
 */
export const SELECTION_SETTLE_MS = 1_000;

/** The pending request a decision key acts on, or why there is none. */
function decidable(state: DashboardState, now: number): BottleRequest | string {
  const r = selectedRequest(state);
  if (!r) return "no request is pending";
  if (r.status !== "pending") return `request ${r.id} is already ${r.status}`;
  if (state.movedAt !== undefined && now - state.movedAt < SELECTION_SETTLE_MS)
    return `the selection just moved to ${r.id}: read it, then press again`;
  return r;
}

/** While a prompt is open, keys edit its line; enter carries it out, escape drops it. */
function pressInPrompt(
  state: DashboardState,
  prompt: Prompt,
  input: string,
  key: Key,
): { state: DashboardState; effect?: Effect } {
  const closed = { ...state };
  delete closed.prompt;
  if (prompt.kind === "stop")
    return input === "y" && !key.ctrl && !key.meta
      ? { state: closed, effect: { kind: "stop", slug: prompt.id } }
      : { state: { ...closed, status: { text: `${prompt.id} keeps running`, error: false } } };
  if (key.escape) return { state: closed };
  if (key.return) {
    const text = prompt.text.trim();
    switch (prompt.kind) {
      case "lease":
        if (text === "") return say(state, "type a duration, e.g. 30m, 2h or 1d (escape cancels)");
        return { state: closed, effect: { kind: "approve", id: prompt.id, for: text } };
      case "deny":
        return {
          state: closed,
          effect: { kind: "deny", id: prompt.id, ...(text ? { reason: text } : {}) },
        };
      case "answer":
        if (text === "") return say(state, "type the answer (escape cancels)");
        return { state: closed, effect: { kind: "answer", id: prompt.id, text: prompt.text } };
    }
  }
  if (key.backspace || key.delete)
    return { state: { ...state, prompt: { ...prompt, text: prompt.text.slice(0, -1) } } };
  if (key.ctrl || key.meta || key.tab || key.upArrow || key.downArrow) return { state };
  // Printable text only: a pasted control character never reaches a decision.
  // eslint-disable-next-line no-control-regex
  const typed = input.replace(/[\u0000-\u001f\u007f-\u009f]/g, "");
  return { state: { ...state, prompt: { ...prompt, text: prompt.text + typed } } };
}

/**
 * A start's progress event (Progress's step, detail, done, warn) in its view: lines as `start`
 * prints them on a terminal, the detail overwritten by the next. Text from image builds is shown,
 * never obeyed: escapes are made visible.
 */
export function progressed(
  view: StartView,
  event: "step" | "detail" | "done" | "warn",
  text: string,
): StartView {
  const shown = visible(text);
  if (event === "detail") return { ...view, detail: shown };
  const next = {
    ...view,
    lines: [
      ...view.lines,
      { step: `- ${shown}`, done: `  ${shown}`, warn: `WARNING: ${shown}` }[event],
    ],
  };
  delete next.detail;
  return next;
}

/** The start under way, if one is. */
export function starting(state: DashboardState): StartView | undefined {
  return state.start && !state.start.outcome ? state.start : undefined;
}

/** While a modal is open, keys move in it; it closes on its choice or escape. */
function pressInModal(
  state: DashboardState,
  modal: Modal,
  input: string,
  key: Key,
): { state: DashboardState; effect?: Effect } {
  const closed = { ...state };
  delete closed.modal;
  delete closed.status;
  const by = key.upArrow || input === "k" ? -1 : key.downArrow || input === "j" ? 1 : 0;
  if (modal.kind === "agents") {
    if (by !== 0) {
      const at = Math.min(modal.agents.length - 1, Math.max(0, modal.at + by));
      return { state: { ...state, modal: { ...modal, at } } };
    }
    if (key.return) {
      const agent = modal.agents[modal.at];
      if (agent === undefined) return { state: closed };
      return { state: closed, effect: { kind: "plan", agent } };
    }
    if (key.escape || input === "q" || (key.ctrl && input === "c"))
      return { state: { ...closed, status: { text: "nothing started", error: false } } };
    return { state };
  }
  if (by !== 0) {
    const top = Math.min(Math.max(0, modal.lines.length - 1), Math.max(0, modal.top + by));
    return { state: { ...state, modal: { ...modal, top } } };
  }
  if (input === "y" && !key.ctrl && !key.meta)
    return { state: closed, effect: { kind: "start", slug: modal.slug } };
  return { state: { ...closed, status: { text: `${modal.slug} was not started`, error: false } } };
}

/** ctrl-c and `q`: quit, unless a start is under way (then a second ctrl-c abandons it). */
function quit(state: DashboardState, input: string): { state: DashboardState; effect?: Effect } {
  const start = starting(state);
  if (!start) return { state, effect: { kind: "quit" } };
  if (input === "c" && state.abandonAsked)
    return { state, effect: { kind: "quit", abandon: start.slug } };
  return {
    state: {
      ...state,
      abandonAsked: input === "c",
      status: {
        text: `${start.slug} is starting: wait for it, or press ctrl-c ${input === "c" ? "again" : "twice"} to abandon it (it is removed)`,
        error: true,
      },
    },
  };
}

/** One key press: the next state, and the effect it asks for. */
export function press(
  state: DashboardState,
  input: string,
  key: Key,
  now = Date.now(),
): { state: DashboardState; effect?: Effect } {
  if (key.ctrl && input === "c" && !state.modal) return quit(state, "c");
  if (state.prompt) return pressInPrompt(state, state.prompt, input, key);
  if (state.modal) return pressInModal(state, state.modal, input, key);
  const quiet = { ...state };
  delete quiet.status;
  delete quiet.abandonAsked;
  // A decision ends the operator's pick: afterwards the first pending request is selected again.
  const acted = { ...quiet, pinned: false };
  if (key.tab) {
    const at = PANELS.indexOf(state.focus);
    const focus = PANELS[(at + (key.shift ? PANELS.length - 1 : 1)) % PANELS.length] as Panel;
    return { state: { ...quiet, focus } };
  }
  if (key.upArrow || input === "k") return { state: moveSelection(quiet, -1) };
  if (key.downArrow || input === "j") return { state: moveSelection(quiet, 1) };
  if (key.return) {
    const b = selectedBottle(state);
    if (!b) return say(state, "no bottle is selected");
    if (b.summary.state !== "running") return say(state, `${b.summary.slug} is not running`);
    return { state: quiet, effect: { kind: "attach", slug: b.summary.slug } };
  }
  if (key.escape) {
    if (state.start?.outcome) {
      const hidden = { ...quiet };
      delete hidden.start;
      return { state: hidden };
    }
    return { state: quiet };
  }
  switch (input) {
    case "q":
      return quit(state, "q");
    case "n": {
      const start = starting(state);
      if (start) return say(state, `one start at a time: ${start.slug} is starting`);
      return { state: quiet, effect: { kind: "agents" } };
    }
    case "l":
      return { state: { ...quiet, view: state.view === "audit" ? "logs" : "audit" } };
    case "s": {
      const b = selectedBottle(state);
      if (!b) return say(state, "no bottle is selected");
      return { state: { ...quiet, prompt: { kind: "stop", id: b.summary.slug, text: "" } } };
    }
    case "a": {
      const r = decidable(state, now);
      if (typeof r === "string") return say(state, r);
      if (r.request.kind === "question") return say(state, `${r.id} is a question: r answers it`);
      return { state: { ...acted, request: r.id }, effect: { kind: "approve", id: r.id } };
    }
    case "A": {
      const r = decidable(state, now);
      if (typeof r === "string") return say(state, r);
      if (r.request.kind === "question") return say(state, `${r.id} is a question: r answers it`);
      return { state: { ...acted, request: r.id, prompt: { kind: "lease", id: r.id, text: "" } } };
    }
    case "d": {
      const r = decidable(state, now);
      if (typeof r === "string") return say(state, r);
      return { state: { ...acted, request: r.id, prompt: { kind: "deny", id: r.id, text: "" } } };
    }
    case "r": {
      const r = decidable(state, now);
      if (typeof r === "string") return say(state, r);
      if (r.request.kind !== "question")
        return say(
          state,
          `${r.id} asks for ${r.request.kind}, not an answer: a approves, d denies`,
        );
      return { state: { ...acted, request: r.id, prompt: { kind: "answer", id: r.id, text: "" } } };
    }
  }
  return { state };
}

/** Whether an audit record is a refusal (shown marked, not by colour alone). */
export function isRefusal(e: AuditEntry): boolean {
  switch (e.source) {
    case "egress":
    case "git":
      return e.record.decision === "refuse";
    case "supervise":
      return (
        e.record.event === "refused" ||
        (e.record.event === "decided" && e.record.outcome === "denied")
      );
  }
}

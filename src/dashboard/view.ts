/**
 * The dashboard's frame: a pure function of its state and the terminal's size. Every line is cut
 * to the width (never wrapped), so text the agent chose cannot push the layout around, and it has
 * already been made visible (escapes shown, not obeyed) by the same calls `requests` and `logs`
 * use. Meaning never rests on colour alone: the selection is marked `›`, a refusal `!`.
 */
import { Box, Text } from "ink";
import { createElement as h, type ReactElement } from "react";
import stringWidth from "string-width";
import { table } from "../shared/table.js";
import { healthNote } from "../lifecycle/health.js";
import { renderLine } from "../lifecycle/logs.js";
import { requestCells, type BottleRequest } from "../lifecycle/requests.js";
import { roughDuration } from "../shared/duration.js";
import { renderAuditEntry } from "../state/audit.js";
import {
  isRefusal,
  selectedBottle,
  selectedRequest,
  type BottleRow,
  type DashboardState,
  type Modal,
  type Panel,
  type Prompt,
  type StartView,
} from "./model.js";

export interface ViewOptions {
  width: number;
  height: number;
  color: boolean;
  now: Date;
}

/** The keys, as the bottom line lists them. */
export const KEYS =
  "tab ↑↓  a/A approve  d deny  r answer  n new  ⏎ attach  l logs  s stop  q quit";

/** The keys while a modal is open. */
const MODAL_KEYS = {
  agents: "↑↓ choose  ⏎ show its plan  escape cancels",
  plan: "y starts it  ↑↓ scroll  any other key cancels",
} as const;

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/**
 * `text` in lines of at most `width` terminal columns (a wide character counts two, a combining
 * mark none), at most `max` of them.
 */
function columns(text: string, width: number, max: number): string[] {
  const lines: string[] = [];
  let line = "";
  let used = 0;
  for (const { segment } of graphemes.segment(text)) {
    const w = stringWidth(segment);
    if (used + w > width) {
      lines.push(line);
      if (lines.length === max) return lines;
      line = "";
      used = 0;
    }
    line += segment;
    used += w;
  }
  if (line !== "" || lines.length === 0) lines.push(line);
  return lines.slice(0, max);
}

/**
 * `text` in lines of at most `width` columns, broken after a space where a line has one past its
 * first `keep` characters (a word longer than a line is broken where it must be).
 */
function wrap(text: string, width: number, keep = 0): string[] {
  const lines: string[] = [];
  let rest = text;
  while (stringWidth(rest) > width && width > 0) {
    const head = columns(rest, width, 1)[0] ?? "";
    const space = head.lastIndexOf(" ");
    const cut = space > keep ? space + 1 : head.length;
    lines.push(head.slice(0, cut).trimEnd());
    rest = rest.slice(cut);
  }
  lines.push(rest);
  return lines;
}

/** `text` cut to `width` columns, ending in … when cut: a line never wraps onto the next. */
function fit(text: string, width: number): string {
  if (stringWidth(text) <= width) return text;
  return `${columns(text, Math.max(0, width - 1), 1)[0] ?? ""}…`;
}

/** One line of a panel: `›` marks the selected row; its text is cut to the width. */
function Line(props: {
  text: string;
  width: number;
  selected?: boolean;
  refusal?: boolean;
  header?: boolean;
  color: boolean;
  key?: string;
}): ReactElement {
  const mark = props.header ? "  " : props.selected ? "› " : props.refusal ? "! " : "  ";
  return h(
    Text,
    {
      wrap: "truncate-end",
      bold: props.header === true,
      inverse: props.selected === true && props.color,
      ...(props.refusal && props.color ? { color: "red" } : {}),
    },
    fit(mark + props.text, props.width),
  );
}

function bottleCells(row: BottleRow, now: Date): string[] {
  const b = row.summary;
  const note = healthNote(b);
  // A running bottle passed start's wait for init's "every daemon ready"; until the engine's
  // first check (a minute in) has a verdict of its own, that is what is known.
  const verdict =
    b.health?.status === "starting" && b.state === "running" ? "ready" : b.health?.status;
  const health = note ?? verdict ?? "-";
  const up = b.created ? roughDuration((now.getTime() - Date.parse(b.created)) / 1000) : "-";
  return [
    b.slug,
    b.agent,
    b.template ?? "-",
    b.backend,
    b.state,
    health,
    up,
    `${row.egress.allowed} ok ${row.egress.refused} ✗`,
  ];
}

const BOTTLE_HEADER = [
  "SLUG",
  "AGENT",
  "TEMPLATE",
  "BACKEND",
  "STATE",
  "HEALTH",
  "UP",
  "EGRESS 1m",
];
const REQUEST_HEADER = ["ID", "BOTTLE", "AGE", "KIND", "WHAT", "REASON", "STATUS"];

/** A panel: its title (marked when focused), then its lines, at most `rows` of them. */
function PanelBox(props: {
  title: string;
  focused: boolean;
  lines: ReactElement[];
  rows: number;
  width: number;
  empty: string;
}): ReactElement {
  const title = `${props.focused ? "▸" : " "} ${props.title}`;
  return h(
    Box,
    { flexDirection: "column", height: props.rows + 1, width: props.width },
    h(Text, { bold: true, wrap: "truncate-end" }, fit(title, props.width)),
    ...(props.lines.length
      ? props.lines
      : [h(Text, { key: "empty", dimColor: true }, `  ${props.empty}`)]),
  );
}

/** The selected request's what, reason and status in full, in lines of `width`, at most 3. */
function detailLines(r: BottleRequest, now: Date, width: number): string[] {
  const [id = "", , , , what = "", reason = "", status = ""] = requestCells(r, now);
  const text = `↳ ${id}: ${what}${reason === "-" ? "" : ` — reason ${reason}`} — ${status}`;
  return columns(text, width, 3);
}

/**
 * A table's header, then the window of `rows` of its rows around the selected one (`›`); no
 * lines at all when it has no rows.
 */
function tableLines(
  cells: readonly (readonly string[])[],
  selected: number,
  rows: number,
  options: { width: number; color: boolean },
): ReactElement[] {
  if (cells.length < 2) return [];
  const [header = "", ...lines] = table(cells);
  const shown = around(lines, selected, rows);
  return [
    h(Line, { key: "h", text: header, header: true, ...options }),
    ...shown.items.map((text, i) =>
      h(Line, {
        key: `${shown.from + i}`,
        text,
        selected: shown.from + i === selected,
        ...options,
      }),
    ),
  ];
}

/** The line being typed, or the question a stop asks. */
function promptLine(prompt: Prompt): string {
  if (prompt.kind === "stop")
    return `stop ${prompt.id}? y stops it (its logs are kept); any other key keeps it`;
  const what = {
    lease: "approve for (e.g. 30m, 2h, 1d)",
    deny: "deny, reason (optional)",
    answer: "answer",
  }[prompt.kind];
  return `${what} ${prompt.id}: ${prompt.text}▏  enter sends, escape cancels`;
}

/** The window of `rows` lines around the selected one. */
function around<T>(
  items: readonly T[],
  selected: number,
  rows: number,
): { from: number; items: T[] } {
  const from = Math.max(0, Math.min(selected - Math.floor(rows / 2), items.length - rows));
  return { from, items: items.slice(from, from + rows) };
}

/** The modal's title and lines, `rows` of them, cut to `width`. */
function modalLines(
  modal: Modal,
  rows: number,
  options: { width: number; color: boolean },
): { title: string; lines: ReactElement[] } {
  if (modal.kind === "agents") {
    const shown = around(modal.agents, modal.at, rows - 1);
    return {
      title: "Start a bottle: which agent?",
      lines: [
        h(Line, { key: "w", text: `workspace ${modal.workspace}`, ...options }),
        ...shown.items.map((agent, i) =>
          h(Line, {
            key: `g${i}`,
            text: agent,
            selected: shown.from + i === modal.at,
            ...options,
          }),
        ),
      ],
    };
  }
  // Wrapped, not cut: every word of the plan is the operator's to read before `y`.
  const wrapped = modal.lines.flatMap((line) => {
    // A continuation lines up under the value, after the label ("  workspace   …").
    const found = (/^ *\S+ {2,}/.exec(line) ?? /^ */.exec(line))?.[0].length ?? 0;
    const label = Math.min(found, Math.floor(options.width / 2));
    const [first = ""] = wrap(line, options.width - 2, label);
    const rest = line.slice(first.length).trimStart();
    if (rest === "") return [first];
    return [first, ...wrap(rest, options.width - 2 - label).map((w) => " ".repeat(label) + w)];
  });
  const top = Math.max(0, Math.min(modal.top, wrapped.length - rows));
  const more = top + rows < wrapped.length;
  const shown = wrapped.slice(top, top + rows);
  if (more) shown[shown.length - 1] = `… ${wrapped.length - top - rows + 1} more lines (↓)`;
  return {
    title: `The plan of ${modal.slug} (agent ${modal.agent})`,
    lines: shown.map((text, i) => h(Line, { key: `p${i}`, text, ...options })),
  };
}

/** A start's progress, its last `rows` lines, the current step's detail last. */
function startLines(
  start: StartView,
  rows: number,
  options: { width: number; color: boolean },
): ReactElement[] {
  const all = start.detail ? [...start.lines, `      ${start.detail}`] : start.lines;
  return all.slice(-rows).map((text, i) =>
    h(Line, {
      key: `s${i}`,
      text,
      refusal: start.outcome === "failed" && i === Math.min(rows, all.length) - 1,
      ...options,
    }),
  );
}

function startTitle(start: StartView): string {
  const how =
    start.outcome === "failed"
      ? "failed (escape hides this)"
      : start.outcome === "ready"
        ? "ready"
        : "under way";
  return `Start of ${start.slug} (agent ${start.agent}): ${how}`;
}

export function Dashboard(props: { state: DashboardState } & ViewOptions): ReactElement {
  const { state, width, height, color, now } = props;
  const bottle = selectedBottle(state);
  const request = selectedRequest(state);
  const pending = state.requests.filter((r) => r.status === "pending").length;
  // 80×24 and up: title, two panels of fixed height, the audit gets the rest, then two lines.
  const bottleRows = Math.max(2, Math.min(state.bottles.length + 1, Math.floor((height - 8) / 3)));
  const requestRows = Math.max(
    2,
    Math.min(state.requests.length + 1, Math.floor((height - 8) / 3)),
  );
  // The selected request in full below the table (its cells are cut to fit): up to 3 lines.
  const detail = request ? detailLines(request, now, width - 4) : [];
  const auditRows = Math.max(1, height - 6 - bottleRows - requestRows - detail.length);
  const focused = (p: Panel) => state.focus === p;

  const bottleLines = tableLines(
    [BOTTLE_HEADER, ...state.bottles.map((b) => bottleCells(b, now))],
    state.bottles.findIndex((b) => b === bottle),
    bottleRows - 1,
    { width, color },
  );
  const requestLines = tableLines(
    [REQUEST_HEADER, ...state.requests.map((r) => requestCells(r, now))],
    state.requests.findIndex((r) => r === request),
    requestRows - 1,
    { width, color },
  );
  if (requestLines.length)
    requestLines.push(
      ...detail.map((text, i) => h(Line, { key: `d${i}`, text: `  ${text}`, width, color })),
    );

  const lowerLines = state.start
    ? startLines(state.start, auditRows, { width, color })
    : state.view === "logs"
      ? state.logs
          .slice(-auditRows)
          .map((l, i) => h(Line, { key: `l${i}`, text: renderLine(l), width, color }))
      : state.audit.slice(-auditRows).map((e, i) =>
          h(Line, {
            key: `a${i}`,
            text: renderAuditEntry(e),
            width,
            refusal: isRefusal(e),
            color,
          }),
        );

  const bottom = state.prompt ? promptLine(state.prompt) : (state.status?.text ?? " ");
  // A modal takes the place of the requests and the audit; the bottles stay in sight.
  const modal = state.modal
    ? modalLines(state.modal, height - 5 - bottleRows, { width, color })
    : undefined;
  const lower = modal
    ? [
        h(PanelBox, {
          key: "modal",
          title: modal.title,
          focused: true,
          lines: modal.lines,
          rows: height - 5 - bottleRows,
          width,
          empty: "the manifest declares no agents",
        }),
      ]
    : [
        h(PanelBox, {
          key: "requests",
          title: "Requests",
          focused: focused("requests"),
          lines: requestLines,
          rows: requestRows + detail.length,
          width,
          empty: "no requests",
        }),
        h(PanelBox, {
          key: "lower",
          title: state.start
            ? startTitle(state.start)
            : `${state.view === "logs" ? "Logs" : "Audit"}${bottle ? ` of ${bottle.summary.slug}` : ""}  (l: ${state.view === "logs" ? "audit" : "logs"})`,
          focused: focused("audit"),
          lines: lowerLines,
          rows: auditRows,
          width,
          empty: bottle ? "nothing yet" : "no bottle selected",
        }),
      ];
  return h(
    Box,
    { flexDirection: "column", width, height },
    h(
      Text,
      { bold: true, wrap: "truncate-end" },
      fit(
        `bot-bottle dashboard — ${state.bottles.length} bottle${state.bottles.length === 1 ? "" : "s"}, ${pending} pending request${pending === 1 ? "" : "s"}`,
        width,
      ),
    ),
    h(PanelBox, {
      title: "Bottles",
      focused: focused("bottles"),
      lines: bottleLines,
      rows: bottleRows,
      width,
      empty: "no bottles (n starts one)",
    }),
    ...lower,
    h(
      Text,
      {
        wrap: "truncate-end",
        ...(state.status?.error && color && !state.prompt ? { color: "red" } : {}),
      },
      fit(bottom, width),
    ),
    h(
      Text,
      { wrap: "truncate-end", dimColor: color },
      fit(state.modal ? MODAL_KEYS[state.modal.kind] : KEYS, width),
    ),
  );
}

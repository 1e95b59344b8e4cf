/**
 * Secret scanning of what the agent sends: the exact value of every secret the bundle holds (raw,
 * base64 and base64url at every alignment, hex, URL-encoded) and the shapes of common credentials.
 * Each text is scanned as sent and, when it holds escapes, as decoded (JSON `\uXXXX` and `\/`,
 * `\xXX`, `%XX`), so a secret spelled partly or wholly in escapes is found too.
 * Bodies are scanned as they stream: a scanner holds back the last bytes of each chunk until the
 * next one has been seen, so a secret that straddles two chunks is found before any of it leaves.
 * Every scan is linear in its text (see secret-patterns.ts), and a stream's scan time is still
 * metered: a request that exceeds its budget is refused rather than let stall the proxy.
 *
 * What comes back is redacted: every held token the upstream echoes, in any of those encodings or
 * JSON-escaped, is replaced by the same encoding of its placeholder, at the same length.
 */
import { findSecretPattern, SCAN_OVERLAP } from "../shared/secret-patterns.js";

export interface Finding {
  /**
   * "held-secret": a secret this bundle holds; "pattern": a credential shape; "placeholder";
   * "budget": the request's scan took longer than its budget (no secret was seen).
   */
  kind: "held-secret" | "pattern" | "placeholder" | "budget";
  /** The variable name or pattern name ("scan-budget" for a budget) — never the value. */
  name: string;
  description: string;
}

export interface HeldSecret {
  /** Where the value comes from (an environment variable's name). */
  name: string;
  value: string;
}

export interface Placeholder {
  /** The token variable it stands for. */
  name: string;
  value: string;
}

/** A request head's part: a header (name and value as Node gives them, one char per byte). */
export interface HeadPart {
  name: string;
  value: string;
}

/**
 * How much scan time one request (one stream) may use: `baseMs` plus `perMiBMs` for every MiB
 * scanned (re-scanned overlap included), measured around each scan only (never the time spent
 * waiting for data). Scanning is linear on every input: about 200 MB/s on ordinary bodies, 80 MB/s
 * on JSON that is all `\u` escapes, and no slower than ~20 MB/s on the worst input known (a text
 * of nothing but shape starts). So the default (2 s, then 4 MiB/s) is not reached by a body of any
 * size sent in chunks of any size, unless the host is many times slower than that; what it
 * bounds is a super-linear case the patterns might still hide: such a body costs at most `baseMs`
 * plus the scan of one window (`STREAM_WINDOW` bytes plus the overlap) before it is refused.
 */
export interface ScanBudget {
  baseMs: number;
  perMiBMs: number;
}

export const DEFAULT_SCAN_BUDGET: Readonly<ScanBudget> = { baseMs: 2000, perMiBMs: 250 };

export interface ScannerOptions {
  /** The budget of each stream (`stream()`); defaults to `DEFAULT_SCAN_BUDGET`. */
  budget?: Partial<ScanBudget>;
  /** Milliseconds, for the budget; `performance.now` unless a test fakes time. */
  clock?: () => number;
}

/** Shortest held secret worth scanning for: shorter values would match ordinary text. */
const MIN_SECRET_LENGTH = 8;

/** A stream's chunk is scanned in windows of at most this many bytes, its budget checked between. */
export const STREAM_WINDOW = 64 * 1024;

/** Most bytes one decoded byte is spelled with (`\u0073`): the decoded view's overlap factor. */
const ESCAPE_SPREAD = 6;

/**
 * Every form of a value, in a fixed order (so a token's and its placeholder's line up): raw,
 * base64 and base64url fragments at each of the three alignments, hex, URL-encoded.
 */
function formList(raw: Buffer): string[] {
  const forms = [raw.toString("latin1")];
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift), raw]);
    const b64 = padded.toString("base64");
    // Characters that mix in the padding's bits, or the end's, are not the secret's own.
    const start = [0, 2, 3][shift] ?? 0;
    const end = Math.floor((padded.length * 8) / 6);
    const fragment = b64.slice(start, end);
    forms.push(fragment, fragment.replaceAll("+", "-").replaceAll("/", "_"));
  }
  const hex = raw.toString("hex");
  forms.push(hex, hex.toUpperCase());
  const uri = encodeURIComponent(raw.toString("utf8"));
  forms.push(uri, uri.replaceAll("%20", "+"));
  return forms;
}

/** Base64 (and base64url) of a value at each alignment, from its first whole character to the end. */
function paddedTails(raw: Buffer): string[] {
  const forms: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), raw])
      .toString("base64")
      .slice([0, 2, 3][shift] ?? 0);
    const url = b64.replaceAll("+", "-").replaceAll("/", "_");
    // With and without its padding: base64url usually goes without.
    forms.push(b64, url, b64.replace(/=+$/, ""), url.replace(/=+$/, ""));
  }
  return forms;
}

/** A value with every character JSON-escaped (`\u0073\u006b…`), in lower- or upper-case hex. */
function jsonEscaped(raw: Buffer, upper: boolean): string {
  let out = "";
  for (const c of raw.toString("utf8")) {
    const code = c.charCodeAt(0);
    const units = code > 0xffff ? [c.charCodeAt(0), c.charCodeAt(1)] : [code];
    for (const u of units) {
      const hex = u.toString(16).padStart(4, "0");
      out += "\\u" + (upper ? hex.toUpperCase() : hex);
    }
  }
  return out;
}

/** The forms a value can take in a request: base64 fragments at each of the three alignments. */
export function encodings(value: string): string[] {
  return [...new Set(formList(Buffer.from(value, "utf8")))].filter(
    (f) => f.length >= MIN_SECRET_LENGTH,
  );
}

// --- decoded views ------------------------------------------------------------------------------

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++)
  HEX["0123456789abcdef".charCodeAt(i)] = HEX["0123456789ABCDEF".charCodeAt(i)] = i;

/** The value of `text`'s `count` hex digits at `at`, or -1. */
function hexAt(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const digit = HEX[text.charCodeAt(i)] ?? -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/** Length of the escape `escapeAt` last decoded (0: none). */
let escapeLength = 0;

/** The bytes (latin1) of the escape at `at` in `text`, setting `escapeLength`; "" if none. */
function escapeAt(text: string, at: number): string {
  escapeLength = 0;
  const c = text.charCodeAt(at);
  const e = text.charCodeAt(at + 1);
  if (c === 0x25 /* % */) {
    const byte = hexAt(text, at + 1, 2);
    if (byte >= 0) escapeLength = 3;
    return byte >= 0 ? String.fromCharCode(byte) : "";
  }
  if (e === 0x2f /* / */) {
    escapeLength = 2;
    return "/";
  }
  if (e === 0x78 /* x */) {
    const byte = hexAt(text, at + 2, 2);
    if (byte >= 0) escapeLength = 4;
    return byte >= 0 ? String.fromCharCode(byte) : "";
  }
  let unit = e === 0x75 /* u */ ? hexAt(text, at + 2, 4) : -1;
  if (unit < 0) return "";
  escapeLength = 6;
  if (unit < 0x80) return String.fromCharCode(unit);
  if (unit >= 0xd800 && unit < 0xdc00 && text.startsWith("\\u", at + 6)) {
    const low = hexAt(text, at + 8, 4);
    if (low >= 0xdc00 && low < 0xe000) {
      unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
      escapeLength = 12;
    }
  }
  // UTF-8 (a lone surrogate as its three bytes, as a lenient encoder would send it).
  if (unit < 0x800) return String.fromCharCode(0xc0 | (unit >> 6), 0x80 | (unit & 0x3f));
  if (unit < 0x10000)
    return String.fromCharCode(
      0xe0 | (unit >> 12),
      0x80 | ((unit >> 6) & 0x3f),
      0x80 | (unit & 0x3f),
    );
  return String.fromCharCode(
    0xf0 | (unit >> 18),
    0x80 | ((unit >> 12) & 0x3f),
    0x80 | ((unit >> 6) & 0x3f),
    0x80 | (unit & 0x3f),
  );
}

/**
 * `text` with its escapes decoded, one level: JSON `\uXXXX` (surrogate pairs joined), `\/`,
 * `\xXX` and `%XX`, the result as bytes (latin1: a `\u` escape becomes its character's UTF-8
 * bytes, as it would have been sent unescaped). Undefined when there was nothing to decode.
 */
export function decodedView(text: string): string | undefined {
  let slash = text.indexOf("\\");
  let percent = text.indexOf("%");
  const parts: string[] = [];
  let done = 0;
  while (slash >= 0 || percent >= 0) {
    const at = slash < 0 ? percent : percent < 0 ? slash : Math.min(slash, percent);
    const bytes = escapeAt(text, at);
    const next = at + Math.max(1, escapeLength);
    if (escapeLength) {
      parts.push(text.slice(done, at), bytes);
      done = next;
    }
    if (slash >= 0 && slash < next) slash = text.indexOf("\\", next);
    if (percent >= 0 && percent < next) percent = text.indexOf("%", next);
  }
  if (parts.length === 0) return undefined;
  parts.push(text.slice(done));
  return parts.join("");
}

/** Node's strings are one char per byte (latin1); other text is taken as UTF-8. */
function asBytes(text: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\xff]/.test(text) ? Buffer.from(text, "utf8").toString("latin1") : text;
}

// --- the scanner --------------------------------------------------------------------------------

interface Needle {
  text: string;
  finding: Finding;
  placeholderOf?: string;
}

export class SecretScanner {
  private readonly needles: Needle[];
  private readonly placeholders: readonly Placeholder[];
  /** Bytes a stream keeps between chunks: the longest needle or shape, even fully escaped. */
  readonly overlap: number;
  readonly budget: Readonly<ScanBudget>;
  readonly clock: () => number;

  constructor(
    secrets: readonly HeldSecret[],
    placeholders: readonly Placeholder[],
    options: ScannerOptions = {},
  ) {
    this.placeholders = placeholders.filter((p) => p.value.length >= MIN_SECRET_LENGTH);
    this.needles = [
      ...secrets
        .filter((s) => s.value.length >= MIN_SECRET_LENGTH)
        .flatMap((s) =>
          encodings(s.value).map((text) => ({
            text,
            finding: {
              kind: "held-secret" as const,
              name: s.name,
              description: `the value of ${s.name}, a secret this bottle holds`,
            },
          })),
        ),
      ...this.placeholders.map((p) => ({
        text: Buffer.from(p.value, "utf8").toString("latin1"),
        placeholderOf: p.name,
        finding: {
          kind: "placeholder" as const,
          name: p.name,
          description: `the placeholder for ${p.name}`,
        },
      })),
    ];
    this.overlap =
      ESCAPE_SPREAD * Math.max(SCAN_OVERLAP, ...this.needles.map((n) => n.text.length));
    this.budget = { ...DEFAULT_SCAN_BUDGET, ...options.budget };
    this.clock = options.clock ?? (() => performance.now());
  }

  /**
   * The first finding in `text` (latin1: one char per byte), as sent or with its escapes
   * decoded, or undefined. The placeholders of `allowed` token variables are fine here (they go to
   * their own route's host).
   */
  scan(text: string, allowed: ReadonlySet<string>): Finding | undefined {
    const found = this.scanView(text, allowed);
    if (found) return found;
    const decoded = decodedView(text);
    return decoded === undefined ? undefined : this.scanView(decoded, allowed);
  }

  /**
   * A request head: the target (as a query, `+` is also read as a space), every header's name and
   * value, and the values (and names) run together with nothing between them, so a secret split
   * over two headers is whole there. Strings as Node gives them (one char per byte).
   */
  scanHead(
    parts: readonly HeadPart[],
    allowed: ReadonlySet<string>,
    target = "",
  ): Finding | undefined {
    const t = asBytes(target);
    const names = parts.map((p) => asBytes(p.name));
    const values = parts.map((p) => asBytes(p.value));
    const views = [
      [t, ...names.map((n, i) => `${n}: ${values[i] ?? ""}`)].join("\n"),
      values.join(""),
      names.join(""),
      names.map((n, i) => n + (values[i] ?? "")).join(""),
    ];
    if (t.includes("+")) {
      views.push(t.replaceAll("+", " "));
      const decoded = decodedView(t);
      if (decoded !== undefined) views.push(decodedView(t.replaceAll("+", " ")) ?? decoded);
    }
    for (const view of views) {
      const found = this.scan(view, allowed);
      if (found) return found;
    }
    return undefined;
  }

  private scanView(text: string, allowed: ReadonlySet<string>): Finding | undefined {
    for (const n of this.needles) {
      if (n.placeholderOf !== undefined && allowed.has(n.placeholderOf)) continue;
      if (text.includes(n.text)) return n.finding;
    }
    const match = findSecretPattern(this.maskPlaceholders(text));
    return match
      ? { kind: "pattern", name: match.pattern.name, description: match.pattern.description }
      : undefined;
  }

  /**
   * A credential shape that is one of our placeholders is not a leak: placeholders are blanked out
   * before shapes are looked for, so a key run on after one is still seen.
   */
  private maskPlaceholders(text: string): string {
    let out = text;
    for (const p of this.needles) {
      if (p.placeholderOf === undefined || !out.includes(p.text)) continue;
      out = out.replaceAll(p.text, "\0".repeat(p.text.length));
    }
    return out;
  }

  stream(allowed: ReadonlySet<string>, budget?: Partial<ScanBudget>): StreamScan {
    return new StreamScan(this, allowed, { ...this.budget, ...budget });
  }
}

/** One body's scan: push chunks in, get back what may be forwarded now. */
export class StreamScan {
  /** The bytes held back, as text (for the next scan) and as sent (to forward them unchanged). */
  private tail = "";
  private held: Buffer = Buffer.alloc(0);
  private spentMs = 0;
  private scannedBytes = 0;
  private refusal: Finding | undefined;

  constructor(
    private readonly scanner: SecretScanner,
    private readonly allowed: ReadonlySet<string>,
    private readonly budget: Readonly<ScanBudget> = scanner.budget,
  ) {}

  /** Bytes scanned so far, overlap included, and the time it took. */
  get work(): { bytes: number; ms: number } {
    return { bytes: this.scannedBytes, ms: this.spentMs };
  }

  push(chunk: Buffer): { forward: Buffer; finding?: Finding } {
    if (this.refusal) return { forward: Buffer.alloc(0), finding: this.refusal };
    const out: Buffer[] = [];
    for (let at = 0; at < chunk.length; at += STREAM_WINDOW) {
      const window = chunk.subarray(at, at + STREAM_WINDOW);
      const text = this.tail + window.toString("latin1");
      const started = this.scanner.clock();
      const finding = this.scanner.scan(text, this.allowed);
      this.spentMs += this.scanner.clock() - started;
      this.scannedBytes += text.length;
      this.refusal = finding ?? this.overBudget();
      if (this.refusal) return { forward: Buffer.alloc(0), finding: this.refusal };
      const keep = Math.min(this.scanner.overlap, text.length);
      this.tail = text.slice(text.length - keep);
      // What leaves is the scanned bytes themselves (held-back ones first), never re-encoded.
      const cut = text.length - keep;
      const held = this.held;
      if (cut >= held.length) {
        if (held.length) out.push(held);
        if (cut > held.length) out.push(window.subarray(0, cut - held.length));
        this.held = Buffer.from(window.subarray(cut - held.length));
      } else {
        if (cut > 0) out.push(held.subarray(0, cut));
        this.held = Buffer.concat([held.subarray(cut), window]);
      }
    }
    return { forward: out.length === 1 ? (out[0] ?? Buffer.alloc(0)) : Buffer.concat(out) };
  }

  private overBudget(): Finding | undefined {
    const mib = this.scannedBytes / (1024 * 1024);
    const allowance = this.budget.baseMs + this.budget.perMiBMs * mib;
    if (this.spentMs <= allowance) return undefined;
    return {
      kind: "budget",
      name: "scan-budget",
      description: `a body whose secret scan took ${Math.round(this.spentMs)} ms for ${mib.toFixed(1)} MiB, more than its budget of ${Math.round(allowance)} ms`,
    };
  }

  end(): Buffer {
    const rest = this.refusal ? Buffer.alloc(0) : this.held;
    this.tail = "";
    this.held = Buffer.alloc(0);
    return rest;
  }
}

// --- the redactor -------------------------------------------------------------------------------

export interface RedactionPair {
  real: Buffer;
  placeholder: Buffer;
}

/** Each token's forms, each with its placeholder's form of the same length, and a search index. */
interface Redactions {
  /** Longest first. */
  forms: RedactionPair[];
  /** Bit h set: some form holds a 4-byte gram that hashes to h. */
  grams: Uint32Array;
  /** For a set bit: the forms that have a gram hashing there. */
  formsAt: Map<number, number[]>;
  /** Distance between the offsets probed: every form covers a probe at one of its own grams. */
  stride: number;
  /** Forms by their first byte, for the hold-back. */
  byFirst: (RedactionPair[] | undefined)[];
  longest: number;
  /** The forms as strings (one char per byte), for header values and status lines. */
  text: { real: string; placeholder: string }[];
}

const GRAM = 4;
const HASH_BITS = 20;
/** A JSON-escaped form is 6-byte blocks (`\u0073`). */
const BLOCK = 6;

const gramHash = (d: Uint8Array, i: number): number =>
  Math.imul(
    (d[i] ?? 0) | ((d[i + 1] ?? 0) << 8) | ((d[i + 2] ?? 0) << 16) | ((d[i + 3] ?? 0) << 24),
    0x9e3779b1,
  ) >>>
  (32 - HASH_BITS);

const compiled = new WeakMap<readonly RedactionPair[], Redactions>();

/** A placeholder form of a different length (not expected) becomes a filler of the right one. */
function sameLength(form: string, length: number): string {
  const base = form || "x";
  return base.repeat(Math.ceil(length / base.length)).slice(0, length);
}

function compile(pairs: readonly RedactionPair[]): Redactions {
  const cached = compiled.get(pairs);
  if (cached) return cached;
  const plain = new Map<string, string>();
  const escaped = new Map<string, string>();
  for (const { real, placeholder } of pairs) {
    if (real.length === 0) continue;
    const fakes = formList(placeholder);
    formList(real).forEach((form, i) => {
      if (form.length >= GRAM && !plain.has(form))
        plain.set(form, sameLength(fakes[i] ?? "", form.length));
    });
    // A token that ends what was base64-encoded ("user:token", the token alone) ends in a
    // character that mixes its last bits with zeros, then padding: that whole tail is its own.
    const tails = paddedTails(placeholder);
    paddedTails(real).forEach((form, i) => {
      if (!plain.has(form)) plain.set(form, sameLength(tails[i] ?? "", form.length));
    });
    for (const upper of [false, true]) {
      const form = jsonEscaped(real, upper);
      if (!escaped.has(form))
        escaped.set(form, sameLength(jsonEscaped(placeholder, upper), form.length));
    }
  }
  const forms: (RedactionPair & { escaped: boolean })[] = [];
  for (const [map, isEscaped] of [
    [plain, false],
    [escaped, true],
  ] as const)
    for (const [r, p] of map)
      if (r !== p && !(isEscaped && plain.has(r)))
        forms.push({
          real: Buffer.from(r, "latin1"),
          placeholder: Buffer.from(p, "latin1"),
          escaped: isEscaped,
        });
  forms.sort((x, y) => y.real.length - x.real.length);
  // Probes every `stride` bytes meet every plain form at least once. An escaped form's grams at
  // block offsets 0, 1 and 5 (`\u00`, `u007`, `3\u0`) are in every escape of its kind, so they
  // are left out; four probes in one, at a stride that is no multiple of 6, meet one of the rest.
  const shortest = Math.min(...forms.filter((f) => !f.escaped).map((f) => f.real.length));
  let stride = Math.max(1, shortest - GRAM + 1);
  if (stride % BLOCK === 0) stride -= 1;
  const grams = new Uint32Array((1 << HASH_BITS) / 32);
  const formsAt = new Map<number, number[]>();
  forms.forEach(({ real, escaped: isEscaped }, index) => {
    for (let i = 0; i + GRAM <= real.length; i++) {
      if (isEscaped && [0, 1, 5].includes(i % BLOCK)) continue;
      const h = gramHash(real, i);
      grams[h >>> 5] = (grams[h >>> 5] ?? 0) | (1 << (h & 31));
      const at = formsAt.get(h) ?? [];
      if (!at.includes(index)) at.push(index);
      formsAt.set(h, at);
    }
  });
  const byFirst: (RedactionPair[] | undefined)[] = new Array<RedactionPair[] | undefined>(256);
  for (const f of forms) (byFirst[f.real[0] ?? 0] ??= []).push(f);
  const r: Redactions = {
    forms,
    grams,
    formsAt,
    stride,
    byFirst,
    longest: Math.max(0, ...forms.map((f) => f.real.length)),
    text: forms.map((f) => ({
      real: f.real.toString("latin1"),
      placeholder: f.placeholder.toString("latin1"),
    })),
  };
  compiled.set(pairs, r);
  return r;
}

/**
 * Replaces real tokens with their placeholders in what comes back (an upstream that echoes
 * request headers must not hand the agent the token), in every form the scanner knows and
 * JSON-escaped: each form of a token becomes the same form of its placeholder, which has the same
 * length, so framing is unchanged. A base64 form is replaced in the characters that are the
 * token's own; the one at each end that mixes in a neighbouring byte's bits keeps them (at most 4
 * bits of the token's first and last bytes).
 *
 * Fast on data with no token: a chunk is probed every `stride` bytes (the shortest form less 3)
 * for a 4-byte piece of any form, through a bit table compiled once per set of pairs; only a
 * probe that hits is looked at, in a window of its form's length around it.
 */
export class Redactor {
  private tail = Buffer.alloc(0);
  private readonly r: Redactions;

  constructor(pairs: readonly RedactionPair[]) {
    this.r = compile(pairs);
  }

  static text(value: string, pairs: readonly RedactionPair[]): string {
    // Called for every response header and status line: the forms' strings are made once, at
    // compile, not per call (decoding each form per header was most of a small reply's cost here).
    let out = value;
    for (const { real, placeholder } of compile(pairs).text)
      if (out.includes(real)) out = out.replaceAll(real, placeholder);
    return out;
  }

  /**
   * What may be forwarded now. Only a chunk that ends with the start of a token's form is held
   * back (from that start), so the usual chunk passes through without a copy.
   */
  push(chunk: Buffer): Buffer {
    if (this.r.forms.length === 0) return chunk;
    const data = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    this.replace(data);
    const cut = this.holdFrom(data);
    this.tail = cut < data.length ? Buffer.from(data.subarray(cut)) : Buffer.alloc(0);
    return cut < data.length ? data.subarray(0, cut) : data;
  }

  end(): Buffer {
    const rest = this.tail;
    this.tail = Buffer.alloc(0);
    return rest;
  }

  /** The first offset from which `data` ends with a proper prefix of a form. */
  private holdFrom(data: Buffer): number {
    const { byFirst } = this.r;
    for (let i = Math.max(0, data.length - this.r.longest + 1); i < data.length; i++) {
      const forms = byFirst[data[i] ?? 0];
      if (!forms) continue;
      const rest = data.length - i;
      for (const { real } of forms) if (real.length > rest && startsWith(real, data, i)) return i;
    }
    return data.length;
  }

  private replace(data: Buffer): void {
    const { grams, formsAt, stride, forms } = this.r;
    const last = data.length - GRAM;
    for (let i = 0; i <= last; i += stride) {
      const h = gramHash(data, i);
      if (((grams[h >>> 5] ?? 0) & (1 << (h & 31))) === 0) continue;
      for (const index of formsAt.get(h) ?? []) {
        const form = forms[index];
        if (form) replaceIn(data, form, Math.max(0, i - form.real.length + GRAM), i + GRAM);
      }
    }
  }
}

/** Whether `data` from `at` to its end is how `form` begins. */
function startsWith(form: Buffer, data: Buffer, at: number): boolean {
  for (let i = at, k = 0; i < data.length; i++, k++) if (data[i] !== form[k]) return false;
  return true;
}

/** Replaces each occurrence of `form` in `data` that starts in [from, to). */
function replaceIn(data: Buffer, form: RedactionPair, from: number, to: number): void {
  const end = Math.min(data.length, to + form.real.length);
  const window = data.subarray(from, end);
  for (let i = window.indexOf(form.real); i >= 0; i = window.indexOf(form.real, i + 1)) {
    form.placeholder.copy(window, i);
    if (from + i >= to) break;
  }
}

/**
 * Secret scanning of what the agent sends: the exact value of every secret the bundle holds (raw,
 * base64 and base64url at every alignment, hex, URL-encoded) and the shapes of common credentials.
 * Bodies are scanned as they stream: a scanner holds back the last bytes of each chunk until the
 * next one has been seen, so a secret that straddles two chunks is found before any of it leaves.
 */
import { SCAN_OVERLAP, SECRET_PATTERNS } from "../../shared/secret-patterns.js";

export interface Finding {
  /** "held-secret": a secret this bundle holds; "pattern": a credential shape; "placeholder". */
  kind: "held-secret" | "pattern" | "placeholder";
  /** The variable name or pattern name — never the value. */
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

/** Shortest held secret worth scanning for: shorter values would match ordinary text. */
const MIN_SECRET_LENGTH = 8;

/** The forms a value can take in a request: base64 fragments at each of the three alignments. */
export function encodings(value: string): string[] {
  const raw = Buffer.from(value, "utf8");
  const forms = new Set<string>([raw.toString("latin1")]);
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift), raw]);
    const b64 = padded.toString("base64");
    // Characters that mix in the padding's bits, or the end's, are not the secret's own.
    const start = [0, 2, 3][shift] ?? 0;
    const end = Math.floor((padded.length * 8) / 6);
    const fragment = b64.slice(start, end);
    forms.add(fragment);
    forms.add(fragment.replaceAll("+", "-").replaceAll("/", "_"));
  }
  forms.add(raw.toString("hex"));
  forms.add(raw.toString("hex").toUpperCase());
  forms.add(encodeURIComponent(value));
  forms.add(encodeURIComponent(value).replaceAll("%20", "+"));
  return [...forms].filter((f) => f.length >= MIN_SECRET_LENGTH);
}

interface Needle {
  text: string;
  finding: Finding;
  placeholderOf?: string;
}

const PATTERNS = new RegExp(SECRET_PATTERNS.map((p) => `(${p.regex.source})`).join("|"), "g");
const CASE_INSENSITIVE = SECRET_PATTERNS.filter((p) => p.regex.flags.includes("i"));

export class SecretScanner {
  private readonly needles: Needle[];
  private readonly placeholders: readonly Placeholder[];
  readonly overlap: number;

  constructor(secrets: readonly HeldSecret[], placeholders: readonly Placeholder[]) {
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
        text: p.value,
        placeholderOf: p.name,
        finding: {
          kind: "placeholder" as const,
          name: p.name,
          description: `the placeholder for ${p.name}`,
        },
      })),
    ];
    this.overlap = Math.max(SCAN_OVERLAP, ...this.needles.map((n) => n.text.length));
  }

  /**
   * The first finding in `text` (latin1), or undefined. The placeholders of `allowed` token
   * variables are fine here (they go to their own route's host).
   */
  scan(text: string, allowed: ReadonlySet<string>): Finding | undefined {
    for (const n of this.needles) {
      if (n.placeholderOf !== undefined && allowed.has(n.placeholderOf)) continue;
      if (text.includes(n.text)) return n.finding;
    }
    PATTERNS.lastIndex = 0;
    for (let m = PATTERNS.exec(text); m; m = PATTERNS.exec(text)) {
      const index = m.slice(1).findIndex((g) => g !== undefined);
      const pattern = SECRET_PATTERNS[index];
      if (pattern && !this.isPlaceholderAt(text, m.index, m[0].length))
        return { kind: "pattern", name: pattern.name, description: pattern.description };
      if (m[0].length === 0) PATTERNS.lastIndex++;
    }
    for (const p of CASE_INSENSITIVE) {
      const m = p.regex.exec(text);
      if (m && !this.isPlaceholderAt(text, m.index, m[0].length))
        return { kind: "pattern", name: p.name, description: p.description };
    }
    return undefined;
  }

  /** A credential shape that is one of our placeholders is not a leak. */
  private isPlaceholderAt(text: string, start: number, length: number): boolean {
    for (const p of this.placeholders) {
      for (let i = text.indexOf(p.value); i >= 0; i = text.indexOf(p.value, i + 1))
        if (i < start + length && start < i + p.value.length) return true;
    }
    return false;
  }

  stream(allowed: ReadonlySet<string>): StreamScan {
    return new StreamScan(this, allowed);
  }
}

/** One body's scan: push chunks in, get back what may be forwarded now. */
export class StreamScan {
  private tail = "";

  constructor(
    private readonly scanner: SecretScanner,
    private readonly allowed: ReadonlySet<string>,
  ) {}

  push(chunk: Buffer): { forward: Buffer; finding?: Finding } {
    const text = this.tail + chunk.toString("latin1");
    const finding = this.scanner.scan(text, this.allowed);
    if (finding) return { forward: Buffer.alloc(0), finding };
    const keep = Math.min(this.scanner.overlap, text.length);
    this.tail = text.slice(text.length - keep);
    return { forward: Buffer.from(text.slice(0, text.length - keep), "latin1") };
  }

  end(): Buffer {
    const rest = Buffer.from(this.tail, "latin1");
    this.tail = "";
    return rest;
  }
}

/**
 * Replaces real tokens with their placeholders in what comes back (an upstream that echoes
 * request headers must not hand the agent the token). Same lengths, so framing is unchanged.
 */
export class Redactor {
  private tail = Buffer.alloc(0);

  constructor(private readonly pairs: readonly { real: Buffer; placeholder: Buffer }[]) {}

  static text(value: string, pairs: readonly { real: Buffer; placeholder: Buffer }[]): string {
    let out = value;
    for (const p of pairs)
      out = out.replaceAll(p.real.toString("latin1"), p.placeholder.toString("latin1"));
    return out;
  }

  /**
   * What may be forwarded now. Only a chunk that ends with the start of a token is held back
   * (from that start), so the usual chunk passes through without a copy.
   */
  push(chunk: Buffer): Buffer {
    if (this.pairs.length === 0) return chunk;
    const data = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    this.replace(data);
    const cut = this.holdFrom(data);
    this.tail = cut < data.length ? Buffer.from(data.subarray(cut)) : Buffer.alloc(0);
    return cut < data.length ? data.subarray(0, cut) : data;
  }

  /** The first offset from which `data` ends with a proper prefix of a token. */
  private holdFrom(data: Buffer): number {
    let cut = data.length;
    for (const { real } of this.pairs) {
      const first = real[0] ?? 0;
      for (
        let i = data.indexOf(first, Math.max(0, data.length - real.length + 1));
        i >= 0 && i < cut;
        i = data.indexOf(first, i + 1)
      )
        if (data.subarray(i).equals(real.subarray(0, data.length - i))) {
          cut = i;
          break;
        }
    }
    return cut;
  }

  end(): Buffer {
    const rest = this.tail;
    this.tail = Buffer.alloc(0);
    return rest;
  }

  private replace(data: Buffer): void {
    for (const p of this.pairs)
      for (let i = data.indexOf(p.real); i >= 0; i = data.indexOf(p.real, i + p.real.length))
        p.placeholder.copy(data, i);
  }
}

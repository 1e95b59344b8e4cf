/**
 * Shapes of common credentials, for secret scanning. Each is anchored on a distinctive start so
 * that a scanner holding back `SCAN_OVERLAP` bytes between chunks finds every one that crosses a
 * chunk boundary. Shared by the egress proxy and (later) the git gate.
 *
 * The search is linear in the text's length, whatever the text: what the agent sends is chosen to
 * be slow if it can be. A backtracking regex searched over `eyJeyJeyJ…` tries every `eyJ`, and
 * each try runs to the end of the token, which makes seconds of 64 KiB. So a shape is never
 * searched for with its own regex: one pass finds where any shape can start (`start`, a literal
 * of bounded length), and the shape's regex is tried there alone (sticky). Each try is linear in
 * the run of characters it reads, and the runs read by different tries do not overlap, because:
 * - a shape whose quantifiers are all bounded reads a bounded number of characters;
 * - a shape that reads an unbounded run of its own start's characters names that run (`run`):
 *   such a shape can only match if it also matches from the first start in that run (an earlier
 *   start has the same tail and more room), so after one failed try the search skips to the run's
 *   end, and the run is read once;
 * - the other unbounded runs (spaces after `aws_secret_key`, words after `-----BEGIN `, the IDs of
 *   a Slack webhook) cannot contain the next start of the same shape, so each is read by one try.
 * A quantifier that ends a shape is written bounded (`{20}`, not `{20,}`): only whether there is
 * a match matters, never its length.
 */
export interface SecretPattern {
  name: string;
  description: string;
  /** The shape, tried only where `start` matches (sticky), never searched for. */
  regex: RegExp;
  /** Where a match can begin: a literal of bounded length, case-sensitive. */
  start: RegExp;
  /**
   * The characters of the unbounded run a match begins with, when it has one (see above): after a
   * failed try the search skips past the run of these characters it was in.
   */
  run?: RegExp;
}

const TOKEN_RUN = /[A-Za-z0-9_-]+/;

export const SECRET_PATTERNS: readonly SecretPattern[] = [
  {
    name: "anthropic-key",
    description: "an Anthropic API key or OAuth token",
    regex: /sk-ant-(?:api|admin|oat|ort|sid)\d{2}-[A-Za-z0-9_-]{20}/,
    start: /sk-ant-/,
  },
  {
    // `sk-proj-…T3BlbkFJ…` is one of these: "proj-" is made of the run's own characters.
    name: "openai-key",
    description: "an OpenAI API key",
    regex: /sk-[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16}/,
    start: /sk-/,
    run: TOKEN_RUN,
  },
  {
    name: "openai-key",
    description: "an OpenAI API key",
    regex: /sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40}/,
    start: /sk-(?:proj|svcacct|admin)-/,
  },
  {
    name: "aws-access-key-id",
    description: "an AWS access key ID",
    regex: /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Z0-9])/,
    start: /AKIA|ASIA|ABIA|ACCA/,
  },
  {
    name: "aws-secret-key",
    description: "an AWS secret access key",
    regex: /aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/i,
    start: /[Aa][Ww][Ss]_?[Ss][Ee][Cc][Rr][Ee][Tt]/,
  },
  {
    name: "github-token",
    description: "a GitHub token",
    regex: /(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{36}/,
    start: /gh[pousr]_/,
  },
  {
    name: "github-token",
    description: "a GitHub token",
    regex: /github_pat_[A-Za-z0-9_]{50}/,
    start: /github_pat_/,
  },
  {
    name: "gitlab-token",
    description: "a GitLab token",
    regex: /glpat-[A-Za-z0-9_-]{20}/,
    start: /glpat-/,
  },
  {
    name: "slack-token",
    description: "a Slack token or webhook",
    regex: /xox[abposr]-[A-Za-z0-9-]{10}/,
    start: /xox[abposr]-/,
  },
  {
    name: "slack-token",
    description: "a Slack token or webhook",
    regex: /hooks\.slack\.com\/services\/T[A-Z0-9]+\/B[A-Z0-9]+\/[A-Za-z0-9]{16}/,
    start: /hooks\.slack\.com\/services\/T/,
  },
  {
    name: "stripe-key",
    description: "a Stripe live key",
    regex: /(?:sk|rk)_live_[A-Za-z0-9]{20}/,
    start: /[sr]k_live_/,
  },
  {
    name: "google-api-key",
    description: "a Google API key",
    regex: /AIza[0-9A-Za-z_-]{35}/,
    start: /AIza/,
  },
  {
    name: "npm-token",
    description: "an npm token",
    regex: /npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/,
    start: /npm_/,
  },
  {
    name: "private-key",
    description: "a PEM private key",
    regex: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/,
    start: /-----BEGIN /,
  },
  {
    name: "jwt",
    description: "a JSON Web Token",
    regex: /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16}/,
    start: /eyJ/,
    run: TOKEN_RUN,
  },
];

/** Bytes a streaming scanner keeps between chunks: longer than any match it must see whole. */
export const SCAN_OVERLAP = 512;

export interface PatternMatch {
  pattern: SecretPattern;
  /** Where the match begins. */
  index: number;
}

interface Compiled {
  pattern: SecretPattern;
  start: RegExp;
  regex: RegExp;
  run: RegExp | undefined;
}

const sticky = (re: RegExp) => new RegExp(re.source, re.flags.replace(/[gy]/g, "") + "y");

/**
 * The characters a `start` can begin with: each top-level alternative's first literal, escaped
 * character or class. A start written otherwise is refused when this module loads.
 */
function firstChars(source: string): number[] {
  const out = new Set<number>();
  let depth = 0;
  let inClass = false;
  let begin = true;
  for (let i = 0; i < source.length; i++) {
    const c = source[i] ?? "";
    if (begin) {
      begin = false;
      if (c === "[") {
        const close = source.indexOf("]", i);
        const body = source.slice(i + 1, close);
        for (let k = 0; k < body.length; k++) {
          const from = body.charCodeAt(k);
          const to = body[k + 1] === "-" && k + 2 < body.length ? body.charCodeAt(k + 2) : from;
          for (let x = from; x <= to; x++) out.add(x);
          if (to !== from) k += 2;
        }
      } else if (c === "\\") out.add(source.charCodeAt(i + 1));
      else if ("()|.*+?{^$".includes(c)) throw new Error(`secret pattern start: ${source}`);
      else out.add(source.charCodeAt(i));
    }
    if (c === "\\") i++;
    else if (inClass) inClass = c !== "]";
    else if (c === "[") inClass = true;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "|" && depth === 0) begin = true;
  }
  return [...out];
}

const COMPILED: readonly Compiled[] = SECRET_PATTERNS.map((pattern) => ({
  pattern,
  start: sticky(pattern.start),
  regex: sticky(pattern.regex),
  run: pattern.run && sticky(pattern.run),
}));

/** For each character: the indexes of the shapes whose start can begin with it. */
const BY_FIRST: number[][] = Array.from({ length: 256 }, () => []);
COMPILED.forEach((c, i) => {
  for (const ch of firstChars(c.pattern.start.source)) BY_FIRST[ch]?.push(i);
});

/** Where any shape can start: one pass over the text. */
const STARTS_SOURCE = SECRET_PATTERNS.map((p) => `(?:${p.start.source})`).join("|");
const STARTS = new RegExp(STARTS_SOURCE, "g");

/**
 * The same search for long texts (bodies), as a regex of its own. V8 compiles a regex's machine
 * code once, tuned to the character frequencies of the text it first runs on (the source is the
 * cache key, hence the extra group): tuned to a request head, the search of a body runs ~10 times
 * slower on some bodies (470 MB/s instead of 5 GB/s on a run of one letter). This one is compiled
 * here, on a text with every byte equally often, and only ever runs on long texts afterwards.
 */
const LONG = 4096;
const STARTS_LONG = new RegExp(`(?:${STARTS_SOURCE})`, "g");
STARTS_LONG.exec(
  Array.from({ length: 256 }, (_, i) => String.fromCharCode(i))
    .join("")
    .repeat(LONG / 256),
);

/**
 * The first credential shape in `text` (by where the search finds it), or undefined. Linear in
 * `text.length` on every input (see the top of this file).
 */
export function findSecretPattern(text: string): PatternMatch | undefined {
  // Per shape with a `run`: the offset before which its tries are known to fail.
  const skip = new Array<number>(COMPILED.length).fill(0);
  const starts = text.length >= LONG ? STARTS_LONG : STARTS;
  starts.lastIndex = 0;
  for (let m = starts.exec(text); m; m = starts.exec(text)) {
    const at = m.index;
    for (const i of BY_FIRST[text.charCodeAt(at)] ?? []) {
      const c = COMPILED[i];
      if (!c || at < (skip[i] ?? 0)) continue;
      c.start.lastIndex = at;
      if (!c.start.test(text)) continue;
      c.regex.lastIndex = at;
      if (c.regex.test(text)) return { pattern: c.pattern, index: at };
      if (c.run) {
        c.run.lastIndex = at;
        c.run.test(text);
        skip[i] = c.run.lastIndex || at + 1;
      }
    }
    starts.lastIndex = at + 1;
  }
  return undefined;
}

/**
 * Text the agent could have chosen, made safe to print on the operator's terminal: control
 * characters (ANSI escape sequences begin with one), DEL and C1 controls, bidirectional overrides
 * and isolates, and zero-width characters are each shown as a visible escape (`\x1b`, `\u202e`),
 * so nothing the agent wrote can move the cursor, recolour or reorder a line, or hide in it.
 */
const HIDDEN =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

export function visible(text: string): string {
  return text.replace(HIDDEN, (c) => {
    const code = c.charCodeAt(0);
    if (c === "\t") return "\\t";
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

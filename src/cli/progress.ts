/**
 * Progress for long work, rendered on stderr. On a terminal the detail line rewrites itself;
 * elsewhere (CI logs) step lines are printed in full and detail lines at most every few seconds.
 */
import type { Progress } from "../shared/progress.js";

export type { Progress };

export function createProgress(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  totalSteps?: number,
): Progress {
  const tty = stream.isTTY === true;
  let step = 0;
  let stepStarted = Date.now();
  let lastDetail = 0;
  let detailShown = false;
  let open = false;
  const clear = () => {
    if (tty && detailShown) stream.write("\r\x1b[2K");
    detailShown = false;
  };
  const elapsed = () => `${((Date.now() - stepStarted) / 1000).toFixed(1)} s`;
  return {
    step(title) {
      clear();
      if (open) stream.write(`      (${elapsed()})\n`);
      open = true;
      step++;
      stepStarted = Date.now();
      stream.write(totalSteps ? `[${step}/${totalSteps}] ${title}\n` : `- ${title}\n`);
    },
    detail(text) {
      const now = Date.now();
      if (tty) {
        const columns = (stream as { columns?: number }).columns ?? 80;
        stream.write(`\r\x1b[2K      ${text.slice(0, Math.max(10, columns - 8))}`);
        detailShown = true;
      } else if (now - lastDetail >= 3000) {
        stream.write(`      ${text}\n`);
        lastDetail = now;
      }
    },
    done(text) {
      clear();
      if (open) stream.write(`      (${elapsed()})\n`);
      open = false;
      stream.write(`${text}\n`);
    },
    warn(text) {
      clear();
      stream.write(`WARNING: ${text}\n`);
    },
  };
}

/**
 * Progress of long host-side work (image builds, a start), as events the work reports and a face
 * renders: cli/ prints them on stderr, the dashboard shows them in its panes. The work never
 * knows which face it reports to.
 */
export interface Progress {
  /** A new step of the work begins. */
  step(title: string): void;
  /** How the current step is getting on; may be dropped or overwritten by the next. */
  detail(text: string): void;
  /** The work, or a part of it, finished. */
  done(text: string): void;
  /** A line that must not be missed, kept on screen. */
  warn(text: string): void;
}

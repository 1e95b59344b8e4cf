/** One line of `bot-bottle doctor`: is this machine ready for some part of bot-bottle? */
export type CheckStatus = "ok" | "warn" | "fail" | "info";

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it, when status is not ok. */
  remedy?: string;
}

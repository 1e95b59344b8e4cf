/**
 * The few kinds of error bot-bottle throws on purpose. Each carries a string code for programs,
 * an exit status, and a sentence (plus an optional hint) for people. They are thrown where they
 * happen and caught once, at the CLI entry point.
 */

export type ErrorCode =
  | "usage"
  | "manifest_invalid"
  | "manifest_missing"
  | "prerequisite_missing"
  | "command_failed"
  | "refused"
  | "provision_failed"
  | "internal";

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  manifest: 2,
  environment: 3,
} as const;

export class BotBottleError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { exitCode: number; hint?: string; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.name = "BotBottleError";
    this.code = code;
    this.exitCode = options.exitCode;
    this.hint = options.hint;
  }
}

/** The command line itself is wrong: an unknown option, a missing argument. */
export class UsageError extends BotBottleError {
  constructor(message: string, hint?: string) {
    super("usage", message, { exitCode: EXIT.usage, ...(hint ? { hint } : {}) });
    this.name = "UsageError";
  }
}

/** Something the operator's machine lacks: no engine, no debootstrap, not root. */
export class PrerequisiteError extends BotBottleError {
  constructor(message: string, hint: string, cause?: unknown) {
    super("prerequisite_missing", message, { exitCode: EXIT.environment, hint, cause });
    this.name = "PrerequisiteError";
  }
}

/** bot-bottle refuses to do something that would lose or overwrite the operator's work. */
export class RefusedError extends BotBottleError {
  constructor(message: string, hint?: string) {
    super("refused", message, { exitCode: EXIT.usage, ...(hint ? { hint } : {}) });
    this.name = "RefusedError";
  }
}

/**
 * A state root with bottles whose audit/supervise.jsonl holds the given requests, as the bundle
 * would have written them — for the operator's commands, without an engine.
 */
import { mkdir, mkdtemp, rm, writeFile, appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SuperviseRecord } from "../../src/shared/supervise.js";

/** An ISO time `seconds` from now. */
export const fromNow = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

export function requestRecord(
  id: string,
  request: Extract<SuperviseRecord, { event: "request" }>["request"],
  options: { age?: number; deadlineIn?: number; flags?: string[] } = {},
): SuperviseRecord {
  return {
    time: fromNow(-(options.age ?? 60)),
    event: "request",
    id,
    request,
    deadline: fromNow(options.deadlineIn ?? 3000),
    flags: options.flags ?? [],
  };
}

export const jsonl = (records: readonly object[]) =>
  records.map((r) => JSON.stringify(r) + "\n").join("");

export interface FakeStateRoot {
  env: NodeJS.ProcessEnv;
  root: string;
  dir: (slug: string) => string;
  add: (slug: string, status: string, records: readonly SuperviseRecord[]) => Promise<void>;
  append: (slug: string, records: readonly SuperviseRecord[]) => Promise<void>;
  done: () => Promise<void>;
}

export async function fakeStateRoot(): Promise<FakeStateRoot> {
  const base = await mkdtemp(join(tmpdir(), "bot-bottle-requests-"));
  const root = join(base, "bot-bottle");
  const dir = (slug: string) => join(root, slug);
  return {
    env: { XDG_STATE_HOME: base },
    root,
    dir,
    async add(slug, status, records) {
      await mkdir(join(dir(slug), "audit"), { recursive: true });
      await mkdir(join(dir(slug), "bundle"), { recursive: true, mode: 0o755 });
      await writeFile(
        join(dir(slug), "metadata.json"),
        JSON.stringify({ slug, status, agent: "coder", bottle: "dev" }),
      );
      await writeFile(join(dir(slug), "audit", "supervise.jsonl"), jsonl(records));
    },
    append: (slug, records) =>
      appendFile(join(dir(slug), "audit", "supervise.jsonl"), jsonl(records)),
    done: () => rm(base, { recursive: true, force: true }),
  };
}

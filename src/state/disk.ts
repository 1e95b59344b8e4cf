/** Free space where bot-bottle writes, for `doctor`. */
import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import type { Check } from "../shared/checks.js";

const LOW_DISK_BYTES = 5 * 1024 ** 3;

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** Free bytes on the file system holding `path`, or its nearest existing parent. */
async function freeBytes(path: string): Promise<{ path: string; free: number } | undefined> {
  let current = path;
  for (;;) {
    try {
      const s = await statfs(current);
      return { path: current, free: s.bavail * s.bsize };
    } catch {
      const parent = dirname(current);
      if (parent === current) return undefined;
      current = parent;
    }
  }
}

/** Warns below a few GiB free at `path`: images and logs need them. */
export async function diskCheck(name: string, path: string): Promise<Check> {
  const disk = await freeBytes(path);
  if (!disk) return { name, status: "warn", detail: `cannot measure free space at ${path}` };
  const detail = `${gib(disk.free)} free on ${disk.path}`;
  if (disk.free < LOW_DISK_BYTES)
    return {
      name,
      status: "warn",
      detail,
      remedy:
        "free some space (e.g. `docker image prune`, `docker builder prune`): images and logs need a few GiB",
    };
  return { name, status: "ok", detail };
}

/** What the engine knows of local images, asked for many refs in one `docker image inspect`. */
import type { DockerCli } from "./cli.js";

export interface InspectedImage {
  id: string;
  labels: Record<string, string>;
  /** Bytes on disk, as `docker images` counts them. */
  size: number;
  created: string;
}

/** Local images among `refs`, by each tag and id they answer to; absent refs are simply missing. */
export async function inspectImages(
  docker: DockerCli,
  refs: readonly string[],
): Promise<Map<string, InspectedImage>> {
  const found = new Map<string, InspectedImage>();
  if (refs.length === 0) return found;
  const { stdout } = await docker.run(
    [
      "image",
      "inspect",
      "--format",
      "{{json .RepoTags}}\t{{.Id}}\t{{json .Config.Labels}}\t{{.Size}}\t{{.Created}}",
      ...new Set(refs),
    ],
    { okExitCodes: [0, 1] },
  );
  for (const line of stdout.split("\n").filter((l) => l.trim())) {
    const [tags = "[]", id = "", labels = "null", size = "0", created = ""] = line.split("\t");
    const info: InspectedImage = {
      id,
      labels: (JSON.parse(labels) as Record<string, string> | null) ?? {},
      size: Number(size) || 0,
      created,
    };
    found.set(id, info);
    for (const tag of (JSON.parse(tags) as string[] | null) ?? []) found.set(tag, info);
  }
  return found;
}

/** The image a ref names among inspected ones (a ref without a tag means its :latest). */
export function imageFor(
  found: ReadonlyMap<string, InspectedImage>,
  ref: string,
): InspectedImage | undefined {
  const name = ref.slice(ref.lastIndexOf("/") + 1);
  return found.get(ref) ?? (name.includes(":") ? undefined : found.get(`${ref}:latest`));
}

/** A size the way `docker images` prints it (decimal units): "659MB", "1.45GB". */
export function formatSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${Number(value.toFixed(digits))}${units[unit]}`;
}

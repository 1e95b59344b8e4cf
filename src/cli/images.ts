import type { Command } from "commander";
import { Option } from "commander";
import {
  buildableImages,
  buildBase,
  buildImages,
  DEFAULT_MIRROR,
  DEFAULT_SUITE,
  formatSize,
  listImages,
  SUITES,
  type BuildResult,
  type ImageListing,
  type Suite,
} from "../backends/images.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { createProgress } from "./progress.js";
import { table } from "../shared/table.js";

export function registerImages(program: Command, ctx: CliContext): void {
  const images = program.command("images").description("build the images bottles run on");
  images
    .command("base")
    .description(
      "build the Debian base image from Debian's packages (debootstrap + docker import), for machines without a registry",
    )
    .addOption(
      new Option("--suite <suite>", "Debian release").choices(SUITES).default(DEFAULT_SUITE),
    )
    .option(
      "--mirror <url>",
      "Debian mirror",
      ctx.env["BOT_BOTTLE_DEBIAN_MIRROR"] || DEFAULT_MIRROR,
    )
    .option("--force", "rebuild even when an image from the same recipe exists")
    .option("--json", "print the result as JSON")
    .action(async (options: { suite: Suite; mirror: string; force?: boolean; json?: boolean }) => {
      const result = await buildBase({
        suite: options.suite,
        mirror: options.mirror,
        force: options.force === true,
        progress: createProgress(ctx.stderr, 3),
        env: ctx.env,
      });
      if (options.json) writeLine(ctx.stdout, JSON.stringify(result));
      else writeLine(ctx.stdout, result.ref);
    });
  const buildable = buildableImages();
  images
    .command("build")
    .description(
      `build bot-bottle's images from images/ (${buildable.join(", ")}); unchanged images are reused`,
    )
    .argument("[names...]", "images to build (default: all)")
    .option(
      "--base <ref>",
      "BASE_IMAGE to build from (default: the offline base when it exists, else the Dockerfile's)",
    )
    .option(
      "--force",
      "rebuild the named images (every step, without docker's cache) even when up to date",
    )
    .option("--json", "print the results as JSON")
    .action(
      async (names: string[], options: { base?: string; force?: boolean; json?: boolean }) => {
        const results = await buildImages(names.length ? names : buildable, {
          env: ctx.env,
          progress: createProgress(ctx.stderr),
          force: options.force === true,
          ...(options.base ? { baseImage: options.base } : {}),
        });
        if (options.json) writeLine(ctx.stdout, JSON.stringify(results));
        else for (const line of table(results.map(buildRow))) writeLine(ctx.stdout, line);
      },
    );
  images
    .command("ls")
    .description("list bot-bottle's images: present or missing, size, and the agent CLI each holds")
    .option("--json", "print the images as JSON")
    .action(async (options: { json?: boolean }) => {
      const listing = await listImages(ctx.env);
      if (options.json) writeLine(ctx.stdout, JSON.stringify(listing));
      else
        for (const line of table([
          ["NAME", "IMAGE", "STATUS", "SIZE", "AGENT CLI"],
          ...listing.map(listRow),
        ]))
          writeLine(ctx.stdout, line);
    });
}

function buildRow(r: BuildResult): string[] {
  return [
    r.ref,
    r.reused ? "up to date" : `built in ${r.seconds.toFixed(1)} s`,
    formatSize(r.size),
    r.agentPackage ?? "",
  ];
}

function listRow(l: ImageListing): string[] {
  const status = l.present
    ? l.pinned && l.built !== l.pinned
      ? `outdated (pinned: ${l.pinned})`
      : "present"
    : l.builtOnStart
      ? "missing (start builds it)"
      : "missing";
  return [
    l.name,
    l.ref,
    status,
    l.size === undefined ? "-" : formatSize(l.size),
    l.built ?? l.pinned ?? "-",
  ];
}

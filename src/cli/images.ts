import type { Command } from "commander";
import { Option } from "commander";
import {
  buildableImages,
  buildBase,
  buildImages,
  DEFAULT_MIRROR,
  DEFAULT_SUITE,
  SUITES,
  type Suite,
} from "../backends/images.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { createProgress } from "./progress.js";

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
    .option("--force", "rebuild even when the image is up to date")
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
        else for (const r of results) writeLine(ctx.stdout, r.ref);
      },
    );
}

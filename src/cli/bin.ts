#!/usr/bin/env node
import { processContext } from "./context.js";
import { run } from "./program.js";

// A reader that stops early (`bot-bottle ls | head -1`) closes the pipe: the rest of the output
// has nowhere to go, which ends the command quietly, as it ends `ls | head` of any tool.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
    process.exit(process.exitCode ?? 0);
  });

process.exitCode = await run(process.argv.slice(2), processContext());

// The fake HTTPS upstream bench/egress measures against, in its own process so it never shares
// an event loop with the client or the proxy. argv: KEY CERT. Prints its port on stdout.
//   GET /small       a 64-byte JSON reply
//   GET /bytes/N     N bytes
//   POST /upload     reads the body, replies with its length
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const small = Buffer.from(JSON.stringify({ ok: true, pad: "x".repeat(40) }));
const block = Buffer.alloc(1 << 20, 0x61);
const server = createServer(
  { key: readFileSync(process.argv[2]), cert: readFileSync(process.argv[3]), keepAlive: true },
  (req, res) => {
    if (req.url.startsWith("/bytes/")) {
      let left = Number(req.url.slice(7));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": left });
      const more = () => {
        while (left > 0) {
          const n = Math.min(left, block.length);
          left -= n;
          if (!res.write(n === block.length ? block : block.subarray(0, n)))
            return res.once("drain", more);
        }
        res.end();
      };
      return more();
    }
    let bytes = 0;
    req.on("data", (c) => (bytes += c.length));
    req.on("end", () => {
      const body = req.url === "/upload" ? Buffer.from(String(bytes)) : small;
      res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
      res.end(body);
    });
  },
);
// BENCH_COUNT=1: report how many TLS connections were opened, on SIGTERM.
let connections = 0;
server.on("secureConnection", () => connections++);
process.on("SIGTERM", () => {
  if (process.env.BENCH_COUNT) process.stderr.write(`upstream: ${connections} TLS connections\n`);
  process.exit(0);
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));

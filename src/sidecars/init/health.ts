/** Exit 0 when init reports every daemon ready, 1 otherwise; prints init's status JSON. */
import { get } from "node:http";

const port = Number(process.argv[2] ?? process.env["BOT_BOTTLE_HEALTH_PORT"] ?? 9000);
const req = get({ host: "127.0.0.1", port, path: "/health", timeout: 2000 }, (res) => {
  let body = "";
  res.setEncoding("utf8");
  res.on("data", (c: string) => (body += c));
  res.on("end", () => {
    process.stdout.write(body + "\n");
    process.exit(res.statusCode === 200 ? 0 : 1);
  });
});
req.on("error", (err) => {
  process.stderr.write(`init health endpoint not answering: ${err.message}\n`);
  process.exit(1);
});
req.on("timeout", () => req.destroy(new Error("timed out")));

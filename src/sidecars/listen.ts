/** A sidecar's server listening: resolves to the port it got (the one asked, or one picked for 0). */
import type { Server } from "node:net";

export function listenOn(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

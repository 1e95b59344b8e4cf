/**
 * One request at a time per agent connection. Admission is asynchronous (a name is resolved), so
 * requests the agent pipelines on one connection would otherwise be decided side by side; here
 * each waits for the one before it to finish. Once the proxy has answered a request with
 * `Connection: close` (a refusal), nothing more on that connection is read as a request
 * (RFC 9112 §9.6): whatever the agent sent behind it is dropped, never forwarded.
 */
import type { Duplex } from "node:stream";

export class Turns {
  private readonly last = new WeakMap<Duplex, Promise<void>>();
  private readonly closing = new WeakSet<Duplex>();

  /**
   * Waits for the connection's earlier requests. Resolves with the function that ends this
   * request's turn, or undefined when the connection is done and the request must be dropped.
   */
  async take(socket: Duplex): Promise<(() => void) | undefined> {
    const previous = this.last.get(socket);
    let release = () => {};
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.last.set(socket, mine);
    if (previous) await previous;
    if (this.closing.has(socket) || socket.destroyed) {
      release();
      return undefined;
    }
    return release;
  }

  /** Nothing after this on `socket` is a request. */
  close(socket: Duplex): void {
    this.closing.add(socket);
  }
}

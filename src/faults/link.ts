/**
 * One client connection through a fault proxy: two pipes (client to upstream, upstream to
 * client), each passing its chunks through the toxics in place on its stream.
 *
 * @module
 */

import type { StreamSocket } from "../types.ts";
import type { ChunkListener } from "../read_queue.ts";
import type { ImmediateWriter } from "../write_queue.ts";
import type { Toxic, ToxicStream } from "./model.ts";
import { SeededRandom } from "./prng.ts";
import { startToxic, stopToxic, targets, toxicData, toxicEnd, type ToxicLink, type ToxicRun, wait } from "./toxics.ts";

/** Bytes received from and sent to a peer on one direction of one proxy: plain numbers a link adds to. */
export interface ByteCounts {
  received: number;
  sent: number;
}

/** What a link needs from its proxy. */
export interface LinkOwner {
  /** The toxics in place on `stream` now, in the order they were added. */
  toxics(stream: ToxicStream): readonly Toxic[];
  /** Where bytes received from and sent to a peer on `stream` are counted (asked once per connection). */
  counts(stream: ToxicStream): ByteCounts;
}

/**
 * A socket whose chunks can be taken synchronously from its data callbacks (Node's and Bun's
 * sockets: `PushStreamSocket`), and written the same way.
 */
type PushSocket = StreamSocket & ImmediateWriter & { subscribe(listener: ChunkListener): void };

function isPush(socket: StreamSocket): socket is PushSocket {
  const candidate = socket as Partial<PushSocket>;
  return typeof candidate.subscribe === "function" && typeof candidate.writeNow === "function" &&
    typeof candidate.onDrain === "function";
}

/** Bytes read ahead of the toxics, per direction, before reading pauses. */
const READ_AHEAD = 256 * 1024;
/** How long a normal close waits for written bytes to go out. */
const FLUSH_MS = 2000;

type Item = { bytes: Uint8Array; at: number } | null;

class Pipe implements ToxicLink, ChunkListener {
  readonly random: SeededRandom;
  readonly signal: AbortSignal;
  readonly runs = new Map<string, ToxicRun>();
  #queue: Item[] = [];
  #queued = 0;
  #wake?: () => void;
  #room?: () => void;
  /** forward() waits for an item: nothing is on its way through the toxics. */
  #idle = false;
  /** Whether a toxic acts on this direction of this connection (its roll chose it). */
  #toxic = false;
  readonly #counts: ByteCounts;
  /** Both sockets push-style: chunks with no toxic go from one's data callback to the other's write. */
  readonly #direct: boolean;
  /** Ends the direct path: with `true` at end of input, `false` when a chunk needs the queue. */
  #leave?: (ended: boolean) => void;

  constructor(
    readonly link: Link,
    readonly stream: ToxicStream,
    readonly from: StreamSocket,
    readonly to: StreamSocket,
    key: string,
  ) {
    this.random = new SeededRandom(`${key}/${stream}`);
    this.signal = link.signal;
    this.#counts = link.owner.counts(stream);
    this.#direct = isPush(from) && isPush(to);
    this.signal.addEventListener("abort", () => {
      this.#wake?.();
      this.#room?.();
      this.#leave?.(true);
    });
  }

  close(): void {
    this.link.close();
  }

  reset(): void {
    this.link.reset();
  }

  /** Brings the runs in line with the toxics in place: new ones start, removed ones stop. */
  sync(toxics: readonly Toxic[]): void {
    const names = new Set(toxics.map((toxic) => toxic.name));
    for (const [name, run] of this.runs) {
      if (names.has(name)) continue;
      this.runs.delete(name);
      stopToxic(run, this, true);
    }
    for (const toxic of toxics) {
      const run = this.runs.get(toxic.name);
      if (run?.toxic === toxic) continue;
      if (run) stopToxic(run, this, false);
      // Toxicity is rolled once per connection and direction, and again when the toxic changes.
      const active = this.random.next() < toxic.toxicity && targets(toxic, this.link.client.remoteAddr);
      if (active) this.link.applied.add(toxic.name);
      const next: ToxicRun = run
        ? Object.assign(run, { toxic, active })
        : { toxic, active, sent: 0, debt: 0, interrupt: new AbortController() };
      this.runs.set(toxic.name, next);
      startToxic(next, this);
    }
    this.#toxic = [...this.runs.values()].some((run) => run.active);
  }

  /** No toxic acts here and nothing is on its way through them: a chunk may go straight out. */
  #clear(): boolean {
    return this.#idle && this.#queue.length === 0 && !this.#toxic && !this.signal.aborted;
  }

  #received(bytes: number): void {
    this.#counts.received += bytes;
    if (this.stream === "upstream") this.link.bytesIn += bytes;
  }

  #sent(bytes: number): void {
    this.#counts.sent += bytes;
    if (this.stream === "downstream") this.link.bytesOut += bytes;
  }

  async read(): Promise<void> {
    try {
      for (;;) {
        // The direct path while it can (one promise each time it is entered, none per chunk); a
        // chunk that needs the toxics or the queue ends it, and the loop below takes over until
        // the queue is empty and no toxic acts again.
        if (this.#direct && this.#clear()) {
          if (await new Promise<boolean>((resolve) => this.#pipeDirect(resolve))) break;
          continue;
        }
        const bytes = await this.from.read();
        if (bytes === null) break;
        this.#received(bytes.length);
        if (this.#clear()) {
          await this.#write(bytes); // no toxic, nothing queued: straight through, without the queue's hops
          continue;
        }
        this.#push({ bytes, at: performance.now() }, bytes.length);
        while (this.#queued >= READ_AHEAD && !this.signal.aborted) {
          await new Promise<void>((resolve) => (this.#room = resolve));
        }
      }
      this.#push(null, 0);
    } catch {
      this.link.close(); // a failed read (reset by the peer): the connection is over
    }
  }

  #pipeDirect(leave: (ended: boolean) => void): void {
    this.#leave = (ended) => {
      this.#leave = undefined;
      leave(ended);
    };
    (this.from as PushSocket).subscribe(this);
  }

  /** The direct path: a chunk from `from`'s data callback, written to `to` at once if no toxic wants it. */
  onChunk(bytes: Uint8Array | null, error?: unknown): boolean {
    const leave = this.#leave;
    if (leave === undefined) return false; // left already (the link closed): the chunk stays unread
    if (bytes === null) {
      if (error !== undefined) this.link.close(); // a failed read (reset by the peer)
      leave(true);
      return false;
    }
    this.#received(bytes.length);
    if (!this.#clear()) {
      // A toxic came into place (or the link closed): this chunk and the next ones take the queue.
      this.#push({ bytes, at: performance.now() }, bytes.length);
      leave(false);
      return false;
    }
    const to = this.to as PushSocket;
    let more: boolean;
    try {
      more = to.writeNow(bytes);
    } catch {
      this.link.close(); // a failed write: the peer is gone
      leave(true);
      return false;
    }
    this.#sent(bytes.length);
    if (more) return true;
    // `to` is backed up: take no more chunks (they queue up in `from`, which pauses) until it drains.
    to.onDrain((failure) => {
      if (this.#leave === undefined) return;
      if (failure !== undefined) {
        this.link.close();
        this.#leave(true);
      } else if (this.#clear()) (this.from as PushSocket).subscribe(this);
      else this.#leave(false);
    });
    return false;
  }

  #push(item: Item, size: number): void {
    this.#queue.push(item);
    this.#queued += size;
    this.#wake?.();
  }

  async #take(): Promise<Item> {
    while (this.#queue.length === 0 && !this.signal.aborted) {
      this.#idle = true;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    this.#idle = false;
    const item = this.#queue.shift() ?? null;
    if (item) this.#queued -= item.bytes.length;
    this.#room?.();
    return item;
  }

  #chain(): ToxicRun[] {
    const chain: ToxicRun[] = [];
    for (const toxic of this.link.owner.toxics(this.stream)) {
      const run = this.runs.get(toxic.name);
      if (run?.active) chain.push(run);
    }
    return chain;
  }

  async forward(): Promise<void> {
    try {
      for (let item = await this.#take(); !this.signal.aborted; item = await this.#take()) {
        const chain = this.#chain();
        if (item === null) {
          for (const run of chain) await toxicEnd(run, this);
          if (!this.signal.aborted) await this.to.closeWrite(); // half-close carried through
          return;
        }
        const through = (i: number, bytes: Uint8Array, at: number): Promise<void> => {
          if (this.signal.aborted) return Promise.resolve();
          if (i === chain.length) return this.#write(bytes);
          return toxicData(chain[i]!, bytes, at, (out, due) => through(i + 1, out, due), this);
        };
        await through(0, item.bytes, item.at);
      }
    } catch {
      this.link.close(); // a failed write: the peer is gone
    }
  }

  async #write(bytes: Uint8Array): Promise<void> {
    await this.to.write(bytes);
    this.#sent(bytes.length);
  }

  stop(): void {
    for (const run of this.runs.values()) stopToxic(run, this, false);
  }
}

/**
 * A client connected through a proxy to its upstream.
 *
 * @example
 * ```ts ignore
 * import { Link } from "./link.ts";
 *
 * const link = new Link(owner, client, upstream, "42/db/1");
 * await link.run(); // until both sides are done
 * ```
 */
export class Link {
  readonly #abort = new AbortController();
  /** The toxics whose roll chose this connection, on either stream. */
  readonly applied = new Set<string>();
  /** Bytes read from the client. */
  bytesIn = 0;
  /** Bytes written to the client. */
  bytesOut = 0;
  readonly #pipes: Record<ToxicStream, Pipe>;

  /**
   * @param owner The proxy: its toxics and counters.
   * @param client The accepted connection.
   * @param upstream The connection to the upstream.
   * @param key What its random choices derive from: seed, proxy name, connection number.
   */
  constructor(readonly owner: LinkOwner, readonly client: StreamSocket, readonly upstream: StreamSocket, key: string) {
    this.#pipes = {
      upstream: new Pipe(this, "upstream", client, upstream, key),
      downstream: new Pipe(this, "downstream", upstream, client, key),
    };
    this.sync("upstream");
    this.sync("downstream");
  }

  /** Aborted once the link is closed. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Relays both ways until both directions have ended (or the link was closed), then closes both sockets. */
  async run(): Promise<void> {
    const pipes = Object.values(this.#pipes);
    const forwarding = pipes.map((pipe) => pipe.forward()); // waiting for chunks before the first is read
    for (const pipe of pipes) void pipe.read();
    await Promise.all(forwarding);
    if (!this.signal.aborted) this.destroy(); // both sides finished sending
  }

  /** The toxics on `stream` changed: applies them to this connection. */
  sync(stream: ToxicStream): void {
    if (!this.signal.aborted) this.#pipes[stream].sync(this.owner.toxics(stream));
  }

  /** Closes normally: what was written goes out (for a bounded time), then FIN both ways. */
  close(): void {
    if (this.signal.aborted) return;
    this.#finish();
    const sockets = [this.client, this.upstream];
    const flushed = new AbortController();
    void Promise.race([Promise.all(sockets.map((s) => s.closeWrite())), wait(FLUSH_MS, flushed.signal)])
      .catch(() => {}) // a socket already reset: nothing to flush
      .finally(() => {
        flushed.abort(); // ends the wait's timer
        for (const socket of sockets) socket.close();
      });
  }

  /** Closes with an RST on both sides (where the transport can). */
  reset(): void {
    if (this.signal.aborted) return;
    this.#finish();
    for (const socket of [this.client, this.upstream]) socket.reset ? socket.reset() : socket.close();
  }

  /** Closes at once (proxy disabled or removed). */
  destroy(): void {
    if (!this.signal.aborted) this.#finish();
    this.client.close();
    this.upstream.close();
  }

  #finish(): void {
    this.#abort.abort();
    for (const pipe of Object.values(this.#pipes)) pipe.stop();
  }
}

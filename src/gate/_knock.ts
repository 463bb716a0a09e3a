// The gate's common case without promises: a plain (or TLS) connection answered on the socket's
// answerEach path, its token timeout and close linger on the shared deadline list, its close
// driven from the socket's callbacks. PROXY and --then connections take serveGate's promise path.

import { addDeadline, cancelDeadline, type Deadline } from "../_timers.ts";
import { errorMessage } from "../log.ts";
import type { ConnectionContext } from "../server.ts";
import type { ChunkResponder, StreamSocket } from "../types.ts";

/** How a knock ended: the one place a knock's result is decided is `settle` in {@linkcode serveGate}. */
export type KnockOutcome = "welcome" | "refused" | "timeout" | "no-token";

/** What every {@linkcode Knock} of a gate shares (one object per gate, not closures per knock). */
export interface KnockSteps {
  readonly timeoutMs: number;
  readonly welcome: Uint8Array;
  readonly refusal: Uint8Array;
  settle(socket: StreamSocket, context: ConnectionContext, outcome: KnockOutcome, started: number): void;
  judge(chunk: Uint8Array, context: ConnectionContext): boolean;
  startWaiting(socket: StreamSocket): string | undefined;
  stopWaiting(counted: string | undefined): void;
}

const WAITING = 0; // for the token
const REPLYING = 1; // the reply is being written
const CLOSING = 2; // FIN sent or on its way; the peer's FIN or the linger ends it
const CLOSED = 3;

/**
 * One knock served from the socket's callbacks (`answerEach`), with no promise of its own but
 * the FIN's: the token wait is a deadline on the shared list, the reply the first chunk's
 * answer, and the close the same sequence as `closeGracefully` (FIN once the reply is out,
 * input read and dropped until the peer's FIN or the linger, then close).
 */
export class Knock implements ChunkResponder {
  readonly readBytes = READ_BYTES;
  #socket: StreamSocket;
  #context: ConnectionContext;
  #steps: KnockSteps;
  #closed: (context: ConnectionContext) => void;
  #lingerMs: number;
  #started = Date.now();
  #phase = WAITING;
  #counted: string | undefined;
  #deadline: Deadline | undefined;
  #welcomed = false;
  #finSent = false;
  #peerDone = false;
  #lingerOver = false;

  constructor(
    socket: StreamSocket,
    context: ConnectionContext,
    steps: KnockSteps,
    closed: (context: ConnectionContext) => void,
    lingerMs: number,
  ) {
    this.#socket = socket;
    this.#context = context;
    this.#steps = steps;
    this.#closed = closed;
    this.#lingerMs = lingerMs;
    this.#counted = steps.startWaiting(socket);
    context.idle = true;
    if (Number.isFinite(steps.timeoutMs)) this.#deadline = addDeadline(steps.timeoutMs, this.#timedOut);
  }

  answer(chunk: Uint8Array): Uint8Array | undefined {
    // After the token: read and dropped, as the close sequence does.
    if (this.#phase !== WAITING) return undefined;
    this.#stopWaiting();
    this.#phase = REPLYING;
    this.#context.bytesIn += chunk.length;
    this.#welcomed = this.#steps.judge(chunk, this.#context);
    return this.#welcomed ? this.#steps.welcome : this.#steps.refusal;
  }

  answered(): void {
    if (this.#phase !== REPLYING) return;
    const reply = this.#welcomed ? this.#steps.welcome : this.#steps.refusal;
    this.#context.bytesOut += reply.length;
    this.#steps.settle(this.#socket, this.#context, this.#welcomed ? "welcome" : "refused", this.#started);
    this.#close();
  }

  ended(error?: unknown): void {
    const phase = this.#phase;
    if (phase === CLOSED) return;
    this.#peerDone = true;
    if (phase === CLOSING) return this.#closeIfDone(); // the peer's FIN (or a reset) in the linger
    if (phase === WAITING) this.#stopWaiting();
    if (error !== undefined) {
      this.#context.logger.log({ event: "error", remote: this.#context.remote, message: errorMessage(error) });
    } else if (phase === WAITING) {
      this.#steps.settle(this.#socket, this.#context, "no-token", this.#started);
    }
    this.#close();
  }

  #timedOut = (): void => {
    this.#deadline = undefined;
    if (this.#phase !== WAITING) return;
    this.#stopWaiting();
    this.#steps.settle(this.#socket, this.#context, "timeout", this.#started);
    this.#close();
  };

  #stopWaiting(): void {
    if (this.#deadline !== undefined) cancelDeadline(this.#deadline);
    this.#deadline = undefined;
    this.#steps.stopWaiting(this.#counted);
    this.#context.idle = false;
  }

  // closeGracefully, from callbacks: the linger counts from here, FIN first.
  #close(): void {
    this.#phase = CLOSING;
    this.#deadline = addDeadline(this.#lingerMs, this.#lingered);
    this.#socket.closeWrite().then(this.#sentFin, this.#finFailed);
  }

  #sentFin = (): void => {
    this.#finSent = true;
    this.#closeIfDone();
  };

  // Reset or closed already: nothing left to flush or wait for.
  #finFailed = (): void => this.#finish();

  #lingered = (): void => {
    this.#deadline = undefined;
    this.#lingerOver = true;
    this.#closeIfDone();
  };

  #closeIfDone(): void {
    if (this.#finSent && (this.#peerDone || this.#lingerOver)) this.#finish();
  }

  #finish(): void {
    if (this.#phase === CLOSED) return;
    this.#phase = CLOSED;
    if (this.#deadline !== undefined) cancelDeadline(this.#deadline);
    this.#deadline = undefined;
    this.#socket.close();
    this.#closed(this.#context);
  }
}

// As much as a read() takes at first (the Deno adapter's 4 KiB), so a token over 1024 bytes shows whole.
const READ_BYTES = 4 * 1024;

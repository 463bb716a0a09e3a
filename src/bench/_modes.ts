/**
 * The bench's connection modes, one operation after another on one connection until the run stops:
 * ping-pong (a message, then its whole echo), connect (a connection per operation, or a knock) and
 * stream (blocks in flight up to a window, the echo verified as it arrives).
 *
 * @module
 */

import { concatAll, pythonRepr, utf8 } from "../_bytes.ts";
import { echoReplyState } from "../client/stream.ts";
import { WELCOME } from "../gate/mod.ts";
import type { StreamSocket } from "../types.ts";
import type { Settings } from "./options.ts";
import type { Pacer } from "./_pacing.ts";
import {
  isEcho,
  Mismatch,
  PATTERN_LENGTH,
  type PatternCopies,
  preview,
  SequenceCounter,
  StreamVerifier,
} from "./_verify.ts";

// A reply this much bigger than its message is not worth re-checking on every chunk.
const EAGER_CHECK_BYTES = 64 * 1024;
// Longest reply a knock reads (the seed's recv(1024)).
const MAX_KNOCK_REPLY = 1024;

/** A connection's wait for the server, watched for the timeout. */
export interface Watched {
  socket: StreamSocket | undefined;
  /** `performance.now()` when the current wait began, or 0 when not waiting. */
  since: number;
  timedOut: boolean;
  /** This connection's schedule, under a rate. */
  pacer: Pacer | undefined;
}

/** What a mode needs of the run it is part of. */
export interface ModeRun {
  readonly settings: Settings;
  /** True once the run stops: each mode returns at its next operation. */
  readonly stopped: boolean;
  /** The bytes the messages are made of (the prefix's bytes left out, so an echo cannot fake one). */
  readonly alphabet: Uint8Array;
  /** The stream mode's pattern. */
  readonly pattern: PatternCopies | undefined;
  /** Called when the run stops, to wake a mode that waits. */
  readonly wakers: Set<() => void>;
  /** Waits for the connection's next slot: when it was due, or undefined once the run stopped. */
  paced(pacer: Pacer): Promise<number | undefined>;
  /** Counts an operation done now (see BenchTally.done). */
  done(due: number, sent: number, bytes: number): void;
  /** Opens a connection (with its PROXY header unless `sendHeader` is false). */
  connect(sendHeader?: boolean): Promise<StreamSocket>;
  /** A fresh connection's PROXY header and its first bytes, in one buffer. */
  withProxyHeader(socket: StreamSocket, bytes: Uint8Array): Uint8Array;
  /** Ends the run (throwing) when a first reply that failed verification is a TLS record. */
  checkForTls(reply: Uint8Array | string): void;
}

export async function pingpong(run: ModeRun, index: number, socket: StreamSocket, watched: Watched): Promise<void> {
  const message = new Uint8Array(run.settings.size);
  const counter = new SequenceCounter(message, run.alphabet, index);
  const prefix = run.settings.prefix;
  const expected = prefix.length + message.length;
  while (!run.stopped) {
    const due = watched.pacer ? await run.paced(watched.pacer) : 0;
    if (due === undefined) return;
    // Safe to rewrite the buffer: the previous message was fully echoed, so it was sent.
    const sequence = counter.next();
    const started = performance.now();
    watched.since = started;
    await socket.write(message);
    const chunk = await socket.read();
    if (watched.timedOut) throw new Error(`No reply within ${run.settings.timeoutMs / 1000} s`);
    // The usual case, checked inline: the whole echo in one frame, in one chunk.
    if (chunk === null || chunk.length !== expected || !isEcho(chunk, prefix, message)) {
      await readEcho(
        run,
        socket,
        watched,
        message,
        chunk,
        () => `connection ${index}, round trip ${sequence}`,
        sequence === 0,
      );
    }
    watched.since = 0;
    run.done(watched.pacer ? Math.min(due, started) : started, started, message.length);
  }
}

async function nextChunk(run: ModeRun, socket: StreamSocket, watched: Watched): Promise<Uint8Array | null> {
  const chunk = await socket.read();
  if (watched.timedOut) throw new Error(`No reply within ${run.settings.timeoutMs / 1000} s`);
  return chunk;
}

/**
 * Reads one echo of `message` (one frame or several), starting with `first` when a chunk was
 * already read; throws a Mismatch when the reply differs.
 */
async function readEcho(
  run: ModeRun,
  socket: StreamSocket,
  watched: Watched,
  message: Uint8Array,
  first: Uint8Array | null | undefined,
  what: () => string,
  firstReply: boolean,
): Promise<void> {
  const prefix = run.settings.prefix;
  const expected = prefix.length + message.length;
  const parts: Uint8Array[] = [];
  let total = 0;
  let chunk = first === undefined ? await nextChunk(run, socket, watched) : first;
  while (true) {
    if (chunk === null) {
      throw new Error(`Server closed the connection ${total === 0 ? "without replying" : "mid-reply"} (${what()})`);
    }
    if (total === 0 && chunk.length === expected && isEcho(chunk, prefix, message)) return;
    parts.push(chunk);
    total += chunk.length;
    if (total >= expected || total <= EAGER_CHECK_BYTES) {
      const reply = concatAll(parts, total);
      parts.length = 0;
      parts.push(reply);
      const state = echoReplyState(reply, message, prefix);
      if (state === "complete") return;
      if (state === "other") {
        if (firstReply) run.checkForTls(reply);
        throw new Mismatch(`${what()}: expected ${preview(prefix, message)}, got ${preview(reply)}`);
      }
    }
    chunk = await nextChunk(run, socket, watched);
  }
}

export async function connectLoop(run: ModeRun, index: number, watched: Watched): Promise<void> {
  const knock = run.settings.knock;
  const message = new Uint8Array(knock ? 0 : run.settings.size);
  const counter = new SequenceCounter(message, run.alphabet, index);
  while (!run.stopped) {
    const due = watched.pacer ? await run.paced(watched.pacer) : 0;
    if (due === undefined) return;
    const sequence = counter.next();
    const started = performance.now();
    // The slot's first socket may already be open (the run's first contact).
    // A fresh connection's PROXY header goes out with its first bytes, in one write, as a proxy
    // that already holds the client's data sends it (a separate small write would meet Nagle's
    // algorithm and the server's delayed ACK).
    const fresh = watched.socket === undefined && run.settings.proxyHeader !== undefined;
    const socket = watched.socket ?? await run.connect(false);
    const first = (bytes: Uint8Array) => fresh ? run.withProxyHeader(socket, bytes) : bytes;
    watched.socket = socket;
    watched.since = performance.now();
    if (knock) {
      await socket.write(first(knock));
      const reply = await readToEnd(run, socket, watched);
      if (reply !== WELCOME) {
        run.checkForTls(reply);
        throw new Mismatch(
          `connection ${index}, knock ${sequence}: expected '${WELCOME}', got ${pythonRepr(utf8(reply))}`,
        );
      }
    } else {
      await socket.write(first(message));
      await readEcho(
        run,
        socket,
        watched,
        message,
        undefined,
        () => `connection ${index}, exchange ${sequence}`,
        true,
      );
    }
    watched.since = 0;
    socket.close();
    watched.socket = undefined;
    run.done(watched.pacer ? Math.min(due, started) : started, started, message.length);
  }
}

/** Reads until the server closes (a gate answers once and hangs up), keeping at most 1024 bytes. */
async function readToEnd(run: ModeRun, socket: StreamSocket, watched: Watched): Promise<string> {
  const parts: Uint8Array[] = [];
  let total = 0;
  while (total <= MAX_KNOCK_REPLY) {
    const chunk = await nextChunk(run, socket, watched);
    if (chunk === null) break;
    parts.push(chunk);
    total += chunk.length;
  }
  return new TextDecoder().decode(concatAll(parts, total));
}

export async function stream(run: ModeRun, index: number, socket: StreamSocket, watched: Watched): Promise<void> {
  const pattern = run.pattern!;
  const window = run.settings.size;
  const block = pattern.block;
  // Each connection starts at its own place in the pattern, so crossed streams show.
  const origin = (index * 7919) % PATTERN_LENGTH;
  const verifier = new StreamVerifier(pattern, origin, run.settings.prefix, `connection ${index}`);
  const written: number[] = []; // when each block in flight was written, oldest first
  const dues: number[] = []; // under a rate, when each was due
  let writtenHead = 0;
  let sent = 0;
  let acknowledged = 0; // bytes of whole blocks echoed
  let room: (() => void) | undefined;
  let readerError: unknown;
  let readerDone = false;
  let finishing = false;
  const wakeWriter = () => {
    const wake = room;
    room = undefined;
    wake?.();
  };

  const reading = (async () => {
    while (true) {
      const chunk = await nextChunk(run, socket, watched);
      if (chunk === null) break;
      try {
        verifier.push(chunk);
      } catch (error) {
        if (verifier.received === 0) run.checkForTls(chunk);
        throw error;
      }
      if (verifier.received > sent) throw new Mismatch(`connection ${index}: more bytes echoed than sent`);
      // The watchdog times a wait only while bytes are in flight.
      const now = performance.now();
      watched.since = verifier.received < sent || finishing ? now : 0;
      if (acknowledged + block <= verifier.received) {
        while (acknowledged + block <= verifier.received) {
          const sentAt = written[writtenHead]!;
          run.done(watched.pacer ? dues[writtenHead]! : sentAt, sentAt, block);
          writtenHead++;
          acknowledged += block;
        }
        if (writtenHead > 1024) {
          written.splice(0, writtenHead);
          if (watched.pacer) dues.splice(0, writtenHead);
          writtenHead = 0;
        }
        wakeWriter();
      }
    }
    if (verifier.received !== sent) {
      throw new Error(`Server closed the connection after echoing ${verifier.received} of ${sent} bytes`);
    }
    if (!run.stopped) throw new Error("Server closed the connection");
  })().catch((error) => {
    readerError = error;
    socket.close(); // fails a write stuck behind a server that stopped reading
  }).finally(() => {
    readerDone = true;
    wakeWriter();
  });

  const stopWaiting = () => wakeWriter();
  run.wakers.add(stopWaiting);
  try {
    while (!run.stopped && !readerDone) {
      if (sent - acknowledged + block > window) {
        // The window is full: wait until a block comes back, or the run stops.
        await new Promise<void>((resolve) => (room = resolve));
        continue;
      }
      if (watched.pacer) {
        const due = await run.paced(watched.pacer);
        if (due === undefined || readerDone) break;
        dues.push(Math.min(due, performance.now()));
      }
      const bytes = pattern.slice((origin + sent) % PATTERN_LENGTH, block);
      written.push(performance.now());
      sent += block;
      if (watched.since === 0) watched.since = performance.now();
      await socket.write(bytes);
    }
    // Done sending: what is in flight must still come back, then the server's FIN (timed).
    if (!readerDone) {
      finishing = true;
      watched.since = performance.now();
      await socket.closeWrite();
    }
  } catch (error) {
    socket.close();
    await reading;
    throw readerError ?? error;
  } finally {
    run.wakers.delete(stopWaiting);
  }
  await reading;
  if (readerError !== undefined) throw readerError;
}

// Bun's TLS listeners and plain text shorter than a TLS record header. Bun.listen({ tls }) gives no
// hook before its handshake, and BoringSSL judges a connection only once it has a whole 5-byte
// record header: a plain client that sent less (a knock's `1`) would wait out its own timeout. The
// data path must stay Bun's native one (docs/tls.md: screening every connection's first byte in JS
// cost ~10% server CPU per round trip), so only connections still in their handshake are looked
// at, a few times a second, by how many bytes the kernel has received on them (Linux's TCP_INFO,
// through bun:ffi): a count of 1 to 4 that stays so is plain text, since a TLS client sends its
// whole ClientHello record at once. Such a connection is answered with a fatal alert written on its
// descriptor (Bun's TLS layer has written nothing yet) and closed. Elsewhere nothing changes.

import { writeSync } from "node:fs";
import type { BunSocket } from "./_bun_api.ts";
import { PLAIN_TEXT_ALERT } from "./_tls_common.ts";

/** How often the connections still in their handshake are looked at. */
const CHECK_INTERVAL_MS = 200;
/** A TLS record header's length: BoringSSL judges a connection from this many bytes on. */
const TLS_RECORD_HEADER_BYTES = 5;

/** The bytes a TCP connection has received so far, or `undefined` where that cannot be known. */
type BytesReceived = (fd: number) => number | undefined;

/** What bun:ffi offers that is used here: a structural copy (bun:ffi has no types outside Bun). */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => number>;
  };
  ptr(view: ArrayBufferView): unknown;
}

// Linux: getsockopt(fd, IPPROTO_TCP, TCP_INFO) fills struct tcp_info; tcpi_bytes_received (since
// Linux 4.1) is the u64 at offset 128.
const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const TCPI_BYTES_RECEIVED_OFFSET = 128;
/** A specifier in a variable, so that other runtimes' type checkers do not resolve it. */
const BUN_FFI = "bun:ffi";

/** Loads the TCP_INFO reader: `undefined` off Bun on Linux, or where libc cannot be opened. */
async function loadBytesReceived(): Promise<BytesReceived | undefined> {
  const runtime = globalThis as { Bun?: unknown; process?: { platform?: string } };
  if (runtime.Bun === undefined || runtime.process?.platform !== "linux") return undefined;
  try {
    const ffi = await import(BUN_FFI) as BunFfi;
    const { getsockopt } = ffi.dlopen("libc.so.6", {
      getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
    }).symbols;
    const info = new Uint8Array(256);
    const view = new DataView(info.buffer);
    const length = new Uint32Array(1);
    const infoPtr = ffi.ptr(info);
    const lengthPtr = ffi.ptr(length);
    return (fd) => {
      length[0] = info.length;
      if (getsockopt!(fd, IPPROTO_TCP, TCP_INFO, infoPtr, lengthPtr) !== 0) return undefined;
      if (length[0]! < TCPI_BYTES_RECEIVED_OFFSET + 8) return undefined; // a kernel before 4.1
      return Number(view.getBigUint64(TCPI_BYTES_RECEIVED_OFFSET, true));
    };
  } catch {
    return undefined;
  }
}

interface Watched {
  socket: BunSocket;
  onPlainText: () => void;
  /** The count seen at the last look, when it was short of a record header. */
  short: number | undefined;
}

/**
 * The connections of Bun's TLS listeners still in their handshake, looked at every 200 ms (only
 * while there are any) for plain text shorter than a TLS record header.
 *
 * @example
 * ```ts
 * import { PlainTextWatch } from "./_bun_plain_text.ts";
 *
 * const watch = new PlainTextWatch();
 * watch.stop(); // nothing watched: no timer runs
 * ```
 */
export class PlainTextWatch {
  #watched = new Map<BunSocket, Watched>();
  #timer: ReturnType<typeof setInterval> | undefined;
  /** `undefined` until loaded, `null` where bytes received cannot be known (nothing is watched). */
  #bytesReceived: BytesReceived | null | undefined;
  #loading: Promise<void> | undefined;

  /**
   * Watches `socket` until {@linkcode PlainTextWatch.stop} or until `onPlainText` is called.
   *
   * @param socket A TLS listener's connection, its handshake not done.
   * @param onPlainText Called once the connection is known to have sent plain text.
   */
  watch(socket: BunSocket, onPlainText: () => void): void {
    if (this.#bytesReceived === null) return;
    this.#loading ??= loadBytesReceived().then((reader) => {
      this.#bytesReceived = reader ?? null;
      if (reader !== undefined) return;
      this.#watched.clear();
      this.stop();
    });
    this.#watched.set(socket, { socket, onPlainText, short: undefined });
    this.#timer ??= setInterval(() => this.#check(), CHECK_INTERVAL_MS);
    (this.#timer as { unref?(): void }).unref?.();
  }

  /**
   * Stops watching `socket` (its handshake settled, or it closed); with none, all timers stop.
   *
   * @param socket A connection given to {@linkcode PlainTextWatch.watch}, or none.
   */
  stop(socket?: BunSocket): void {
    if (socket !== undefined) this.#watched.delete(socket);
    if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #check(): void {
    if (!this.#bytesReceived) return; // still loading
    for (const watched of this.#watched.values()) {
      const fd = (watched.socket as { fd?: number }).fd;
      const received = fd === undefined || fd < 0 ? undefined : this.#bytesReceived(fd);
      if (received === undefined || received === 0 || received >= TLS_RECORD_HEADER_BYTES) {
        watched.short = undefined;
        continue;
      }
      // Short of a header at two looks in a row: a TLS client would have sent on by now.
      if (watched.short !== received) {
        watched.short = received;
        continue;
      }
      this.#watched.delete(watched.socket);
      try {
        writeSync(fd!, PLAIN_TEXT_ALERT);
      } catch {
        // The peer has gone: closing is all that is left.
      }
      watched.onPlainText();
    }
    this.stop();
  }
}

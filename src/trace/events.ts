/**
 * The steps a trace reports, in the socket tutorial's vocabulary.
 *
 * @module
 */

/**
 * The name of one step: the tutorial's six server steps (`socket`, `bind`, `listen`, `accept`,
 * `recv`/`send`, `close`), the client's `connect` and `shutdown`, the gate's `timeout`, a TLS
 * handshake (`tls`), a PROXY header (`proxy`) and UDP's `recvfrom`/`sendto`.
 *
 * @example
 * ```ts
 * import type { TraceStep } from "./mod.ts";
 *
 * const first: TraceStep = "socket";
 * ```
 */
export type TraceStep =
  | "socket"
  | "bind"
  | "listen"
  | "accept"
  | "connect"
  | "recv"
  | "send"
  | "shutdown"
  | "close"
  | "timeout"
  | "tls"
  | "proxy"
  | "recvfrom"
  | "sendto";

/**
 * One step as a server or client reports it to a {@linkcode Tracer}. `conn` is the connection's
 * number: 0 for the listening (or UDP) socket, then 1, 2, … in the order connections were accepted
 * or made. `together` lists the steps the same runtime call also did, in order, where one call did
 * several (node:net's `listen()` creates, binds and listens): the line then says so rather than
 * pretending each was a call of its own. `api` names that call. `preview` holds at most the first
 * bytes of the data (a copy: the data itself may be lent), `bytes` the whole count; `hidden`
 * marks data that must not be shown (a gate token), its preview empty.
 *
 * @example A connection's first chunk
 * ```ts
 * import type { TraceEvent } from "./mod.ts";
 *
 * const bytes = new TextEncoder().encode("hello");
 * const event: TraceEvent = { step: "recv", conn: 1, bytes: bytes.length, preview: bytes };
 * ```
 */
export type TraceEvent =
  | { step: "socket"; conn: number }
  | { step: "bind"; conn: number; address: string; together?: readonly TraceStep[]; api?: string }
  | { step: "listen"; conn: number; address: string; backlog?: number; together?: readonly TraceStep[]; api?: string }
  | { step: "accept"; conn: number; peer: string }
  | { step: "connect"; conn: number; peer: string; together?: readonly TraceStep[]; api?: string }
  | { step: "recv"; conn: number; bytes: number; preview: Uint8Array; hidden?: boolean }
  | { step: "send"; conn: number; bytes: number; preview: Uint8Array; hidden?: boolean }
  | { step: "shutdown"; conn: number }
  | { step: "close"; conn: number }
  | { step: "timeout"; conn: number; afterMs?: number }
  | { step: "tls"; conn: number; version?: string; cipher?: string }
  | { step: "proxy"; conn: number; client: string }
  | { step: "recvfrom"; conn: number; peer: string; bytes: number; preview: Uint8Array }
  | { step: "sendto"; conn: number; peer: string; bytes: number; preview: Uint8Array };

/**
 * A {@linkcode TraceEvent} stamped by the tracer: `ms` since the tracer started.
 *
 * @example
 * ```ts
 * import type { TraceRecord } from "./mod.ts";
 *
 * const record: TraceRecord = { step: "close", conn: 1, ms: 12.5 };
 * ```
 */
export type TraceRecord = TraceEvent & { readonly ms: number };

/**
 * How many bytes of a chunk a trace keeps for its preview: more than an 80-column line shows
 * (32 wide characters of 3 bytes each, the most a line has room for).
 *
 * @example
 * ```ts
 * import { PREVIEW_BYTES } from "./mod.ts";
 *
 * console.log(PREVIEW_BYTES); // 96
 * ```
 */
export const PREVIEW_BYTES = 96;

/**
 * Copies the first {@linkcode PREVIEW_BYTES} of `bytes` for a trace event: the chunk itself may
 * be lent (reused for the next read) and must not be kept.
 *
 * @param bytes The data sent or received.
 * @returns A copy of at most its first {@linkcode PREVIEW_BYTES} bytes.
 *
 * @example
 * ```ts
 * import { previewOf } from "./mod.ts";
 *
 * console.log(previewOf(new Uint8Array(1000)).length); // 96
 * ```
 */
export function previewOf(bytes: Uint8Array): Uint8Array {
  return bytes.slice(0, PREVIEW_BYTES);
}

/**
 * `--trace`: each socket step a server or client takes (socket, bind, listen, accept, connect,
 * recv, send, shutdown, close, the gate's timeout, the TLS handshake, a PROXY header, UDP's
 * recvfrom/sendto), as one line on standard error in the socket tutorial's vocabulary.
 *
 * - events.ts: the steps ({@linkcode TraceEvent}).
 * - tracer.ts: what servers and clients call ({@linkcode Tracer}) and where it goes ({@linkcode TraceSink}).
 * - vocabulary.ts: every word a line is made of, one table per language. To trace in another
 *   language (the demo's Chinese: 创建套接字, 绑定, 监听, 接受, 接收/发送, 关闭), add a
 *   {@linkcode TraceVocabulary} table beside TRACE_VOCABULARY_EN and pass it as
 *   `renderTraceLine(record, { vocabulary })`; no code path changes.
 * - render.ts: one line per step, at most 80 columns (wide characters count 2), escaped, coloured on request.
 * - width.ts: terminal columns.
 * - transport.ts: {@linkcode traceTransport}, a Transport wrapper that traces, installed only with `--trace`.
 * - session.ts: {@linkcode traceSession}, that transport and a logger wrapper for the steps only a server's logs tell
 *   (the gate's timeout, a PROXY header's client): what the CLI (src/cli/trace_option.ts) and the demo use.
 *
 * @example Trace to the console
 * ```ts
 * import { createTracer, renderTraceLine } from "./mod.ts";
 *
 * const tracer = createTracer((record) => console.error(renderTraceLine(record)));
 * tracer.trace({ step: "listen", conn: 0, address: "127.0.0.1:50007", backlog: 511, together: ["socket", "bind"] });
 * ```
 *
 * @module
 */

export { PREVIEW_BYTES, previewOf, type TraceEvent, type TraceRecord, type TraceStep } from "./events.ts";
export { createTracer, type CreateTracerOptions, type Tracer, type TraceSink } from "./tracer.ts";
export { TRACE_VOCABULARY_EN, type TraceVocabulary } from "./vocabulary.ts";
export { renderTraceLine, type RenderTraceOptions } from "./render.ts";
export { columns, fitColumns } from "./width.ts";
export { traceTransport, type TraceTransportOptions } from "./transport.ts";
export { type TraceSession, traceSession, type TraceSessionOptions } from "./session.ts";

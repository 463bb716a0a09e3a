/**
 * The words a trace line is made of, in one table per language.
 *
 * @module
 */

import type { TraceStep } from "./events.ts";

/**
 * Every word the renderer writes: the step labels and the few words around the values. Another
 * language is another table passed to {@linkcode renderTraceLine} (the demo's Chinese: 创建套接字,
 * 绑定, 监听, 接受, 接收/发送, 关闭); no code path changes.
 *
 * @example A vocabulary with one label changed
 * ```ts
 * import { TRACE_VOCABULARY_EN, type TraceVocabulary } from "./mod.ts";
 *
 * const loud: TraceVocabulary = { ...TRACE_VOCABULARY_EN, steps: { ...TRACE_VOCABULARY_EN.steps, recv: "RECV" } };
 * ```
 */
export interface TraceVocabulary {
  /** The label of each step. */
  readonly steps: Readonly<Record<TraceStep, string>>;
  /** Joins the labels of steps one call did: `socket+bind+listen`. */
  readonly joiner: string;
  /** After an `accept` or `recvfrom` label, before the peer: `from`. */
  readonly from: string;
  /** After a `connect` or `sendto` label, before the peer: `to`. */
  readonly to: string;
  /** Before a listener's backlog: `backlog`. */
  readonly backlog: string;
  /** A byte count: `(n) => "5 B"`. */
  readonly bytes: (n: number) => string;
  /** What a `recv` of 0 bytes means: `EOF`. */
  readonly eof: string;
  /** Says one call did several steps, naming it (`api`) where known: `one call: node:net listen()`. */
  readonly oneCall: (api?: string) => string;
  /** In place of the preview of data not shown (a gate token): `(token: not shown)`. */
  readonly hidden: string;
  /** Before a hex preview of binary bytes: `hex`. */
  readonly hex: string;
  /** The gate's timeout, with how long it waited where known: `no token after 5000 ms`. */
  readonly timeout: (afterMs?: number) => string;
  /** Before a TLS cipher: `cipher`. */
  readonly cipher: string;
  /** Before the client a PROXY header names: `client`. */
  readonly client: string;
}

/**
 * The English vocabulary, the default.
 *
 * @example
 * ```ts
 * import { TRACE_VOCABULARY_EN } from "./mod.ts";
 *
 * console.log(TRACE_VOCABULARY_EN.steps.recv); // "recv"
 * ```
 */
export const TRACE_VOCABULARY_EN: TraceVocabulary = {
  steps: {
    socket: "socket",
    bind: "bind",
    listen: "listen",
    accept: "accept",
    connect: "connect",
    recv: "recv",
    send: "send",
    shutdown: "shutdown",
    close: "close",
    timeout: "timeout",
    tls: "tls",
    proxy: "proxy",
    recvfrom: "recvfrom",
    sendto: "sendto",
  },
  joiner: "+",
  from: "from",
  to: "to",
  backlog: "backlog",
  bytes: (n) => `${n} B`,
  eof: "EOF",
  oneCall: (api) => (api ? `one call: ${api}` : "one call"),
  hidden: "(token: not shown)",
  hex: "hex",
  timeout: (afterMs) => (afterMs === undefined ? "no token in time" : `no token after ${Math.round(afterMs)} ms`),
  cipher: "cipher",
  client: "client",
};

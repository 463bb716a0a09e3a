// The trace's words in the tutorial's Chinese, for `echogate demo --lang zh`.

import type { TraceVocabulary } from "../trace/mod.ts";

/**
 * The trace vocabulary in the tutorial's own Chinese terms: 创建套接字 (socket), 绑定 (bind),
 * 监听 (listen), 接受 (accept), 连接 (connect), 接收 (recv), 发送 (send), 关闭 (close), 超时
 * (timeout), as the seed writes them; `shutdown`, which the tutorial does not use, is 关闭写端.
 *
 * @example
 * ```ts
 * import { renderTraceLine } from "../trace/mod.ts";
 * import { TRACE_VOCABULARY_ZH } from "./vocabulary_zh.ts";
 *
 * const line = renderTraceLine({ step: "recv", conn: 1, ms: 1, bytes: 0, preview: new Uint8Array() }, {
 *   vocabulary: TRACE_VOCABULARY_ZH,
 * });
 * console.log(line); // "     1.0 ms #1  接收     0 字节 (EOF)"
 * ```
 */
export const TRACE_VOCABULARY_ZH: TraceVocabulary = {
  steps: {
    socket: "创建套接字",
    bind: "绑定",
    listen: "监听",
    accept: "接受",
    connect: "连接",
    recv: "接收",
    send: "发送",
    shutdown: "关闭写端",
    close: "关闭",
    timeout: "超时",
    tls: "TLS握手",
    proxy: "PROXY头",
    recvfrom: "接收(recvfrom)",
    sendto: "发送(sendto)",
  },
  joiner: "+",
  from: "来自",
  to: "至",
  backlog: "backlog",
  bytes: (n) => `${n} 字节`,
  eof: "EOF",
  oneCall: (api) => (api ? `一次调用:${api}` : "一次调用"),
  hidden: "(口令:不显示)",
  hex: "十六进制",
  timeout: (afterMs) => (afterMs === undefined ? "未及时收到口令" : `${Math.round(afterMs)} 毫秒内未收到口令`),
  cipher: "密码套件",
  client: "客户端",
};

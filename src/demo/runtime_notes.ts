// `echogate demo --runtime-notes`: what each runtime's own API does at each step, beside the
// tutorial's Python. The same facts, as a table, are in docs/learn.md.

import type { TraceStep } from "../trace/mod.ts";
import type { DemoLanguage } from "./text.ts";

/** The runtimes a note covers, in the order it lists them. */
const RUNTIMES = ["Python", "node:net", "Deno", "Bun"] as const;

type Note = Readonly<Record<typeof RUNTIMES[number], string>>;

const EN: Partial<Record<TraceStep, Note>> = {
  listen: {
    Python: "socket(), bind((host, port)), listen(5): three calls",
    "node:net": "server.listen(port, host) creates, binds and listens at once (backlog 511)",
    Deno: "Deno.listen({ hostname, port }) does all three in one call",
    Bun: "Bun.listen({ hostname, port, socket }) does all three in one call",
  },
  accept: {
    Python: "conn, addr = sock.accept() blocks until a client comes",
    "node:net": "no accept call: a 'connection' event hands over each socket",
    Deno: "conn = await listener.accept(), pulled one at a time like Python",
    Bun: "no accept call: the open(socket) handler is called for each",
  },
  connect: {
    Python: "sock = socket(...); sock.connect((host, port)): two calls",
    "node:net": "net.connect({ host, port }) creates and connects",
    Deno: "await Deno.connect({ hostname, port }) creates and connects",
    Bun: "await Bun.connect({ hostname, port, socket }) creates and connects",
  },
  recv: {
    Python: "recv(1024) returns at most 1024 bytes; b'' at end of input",
    "node:net": "no recv(n): 'data' events bring chunks of the runtime's size",
    Deno: "conn.read(buffer) fills at most buffer.length: recv(n) itself",
    Bun: "no recv(n): the data(socket, chunk) handler gets each chunk",
  },
  send: {
    Python: "send() may take only part and returns how much; sendall() loops",
    "node:net": "socket.write() queues everything; false means wait for 'drain'",
    Deno: "conn.write() may take only part: echogate writes the rest",
    Bun: "socket.write() returns the bytes taken; the rest waits for drain",
  },
  shutdown: {
    Python: "sock.shutdown(SHUT_WR) sends FIN; reading goes on",
    "node:net": "socket.end() (with allowHalfOpen) sends FIN",
    Deno: "conn.closeWrite() sends FIN",
    Bun: "socket.shutdown() sends FIN",
  },
  close: {
    Python: "conn.close()",
    "node:net": "socket.destroy(), or end() to let queued bytes go first",
    Deno: "conn.close()",
    Bun: "socket.end()",
  },
  timeout: {
    Python: "conn.settimeout(5): recv raises socket.timeout",
    "node:net": "socket.setTimeout() only reports idleness; echogate uses a timer",
    Deno: "no read timeout: echogate races the read against a timer",
    Bun: "socket.timeout(seconds) is coarse; echogate uses its own timer",
  },
};

const ZH: Partial<Record<TraceStep, Note>> = {
  listen: {
    Python: "socket()、bind((host, port))、listen(5):三次调用",
    "node:net": "server.listen(port, host) 一次完成创建、绑定和监听(backlog 511)",
    Deno: "Deno.listen({ hostname, port }) 一次调用完成这三步",
    Bun: "Bun.listen({ hostname, port, socket }) 一次调用完成这三步",
  },
  accept: {
    Python: "conn, addr = sock.accept() 阻塞,直到客户请求连接",
    "node:net": "没有 accept 调用:每个连接由 'connection' 事件交出",
    Deno: "conn = await listener.accept(),与 Python 一样逐个取出",
    Bun: "没有 accept 调用:每个连接调用一次 open(socket) 处理函数",
  },
  connect: {
    Python: "sock = socket(...);sock.connect((host, port)):两次调用",
    "node:net": "net.connect({ host, port }) 创建并连接",
    Deno: "await Deno.connect({ hostname, port }) 创建并连接",
    Bun: "await Bun.connect({ hostname, port, socket }) 创建并连接",
  },
  recv: {
    Python: "recv(1024) 最多返回 1024 字节;数据结束时返回 b''",
    "node:net": "没有 recv(n):'data' 事件送来的块大小由运行时决定",
    Deno: "conn.read(buffer) 最多读 buffer.length 字节,即 recv(n)",
    Bun: "没有 recv(n):data(socket, chunk) 处理函数收到每一块",
  },
  send: {
    Python: "send() 可能只发送一部分并返回已发送的字节数;sendall() 会循环",
    "node:net": "socket.write() 全部排队;返回 false 时等待 'drain'",
    Deno: "conn.write() 可能只写一部分:echogate 写完其余部分",
    Bun: "socket.write() 返回已接受的字节数;其余等待 drain",
  },
  shutdown: {
    Python: "sock.shutdown(SHUT_WR) 发送 FIN;仍可继续接收",
    "node:net": "socket.end()(allowHalfOpen)发送 FIN",
    Deno: "conn.closeWrite() 发送 FIN",
    Bun: "socket.shutdown() 发送 FIN",
  },
  close: {
    Python: "conn.close()",
    "node:net": "socket.destroy(),或 end() 先让排队的数据发出",
    Deno: "conn.close()",
    Bun: "socket.end()",
  },
  timeout: {
    Python: "conn.settimeout(5):recv 抛出 socket.timeout",
    "node:net": "socket.setTimeout() 只报告空闲;echogate 用自己的定时器",
    Deno: "没有读超时:echogate 让读与定时器赛跑",
    Bun: "socket.timeout(seconds) 精度粗;echogate 用自己的定时器",
  },
};

/**
 * The note for `step`: one `runtime: what its API does` line per runtime, Python first; empty
 * for steps without one. `socket` and `bind` are told under `listen`, which does them together
 * on every runtime echogate runs on.
 *
 * @param step The trace step.
 * @param language The language of the note.
 * @returns Its lines (without indentation).
 *
 * @example
 * ```ts
 * import { runtimeNote } from "./runtime_notes.ts";
 *
 * console.log(runtimeNote("listen", "en")[0]); // "Python: socket(), bind((host, port)), listen(5): three calls"
 * ```
 */
export function runtimeNote(step: TraceStep, language: DemoLanguage): string[] {
  const note = (language === "zh" ? ZH : EN)[step];
  return note === undefined ? [] : RUNTIMES.map((runtime) => `${runtime}: ${note[runtime]}`);
}

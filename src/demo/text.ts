// What `echogate demo` says, in English and in the tutorial's own Chinese. The Chinese follows
// the seed's wording: 创建套接字, 绑定, 监听, 接受, 连接, 接收, 发送, 关闭, 超时, 缓冲于接收端.

/**
 * The languages `echogate demo` narrates in.
 *
 * @example
 * ```ts
 * import { DEMO_LANGUAGES } from "./text.ts";
 *
 * console.log(DEMO_LANGUAGES.join("|")); // "en|zh"
 * ```
 */
export const DEMO_LANGUAGES = ["en", "zh"] as const;

/** A language `echogate demo` narrates in: English or the tutorial's Chinese. */
export type DemoLanguage = typeof DEMO_LANGUAGES[number];

/** The narration of one language; `{name}` marks a value filled in at run time. */
export interface DemoText {
  /** The first line: what runs, on which runtime. */
  header: string;
  /** The line under it: where, and what the trace lines show. */
  legend: string;
  /** The names of the two sides, as the trace lines show them. */
  server: string;
  client: string;
  /** What a side prints to standard output, as the tutorial's programs print it. */
  prints: string;
  /** The gate's title and introduction (`{timeout}`: the demo's timeout in seconds). */
  gateTitle: string;
  gateIntro: string;
  /** Scenario titles and introductions. */
  gateWelcomeTitle: string;
  gateWelcomeIntro: string;
  gateRefusedTitle: string;
  gateRefusedIntro: string;
  gateTimeoutTitle: string;
  gateTimeoutIntro: string;
  /** What the silent client sees at the end. */
  gateTimeoutEnd: string;
  echoTitle: string;
  echoIntro: string;
  recvLargeTitle: string;
  recvLargeIntro: string;
  /** After the large message: the reads, and that they add up. */
  recvLargeEnd: string;
  recvMergedTitle: string;
  recvMergedIntro: string;
  /** After the merged read: how many sends, how many reads. */
  recvMergedEnd: string;
  /** A runtime note's lead, before the runtime's name. */
  noteLead: string;
  /** The last line. */
  done: string;
}

const EN: DemoText = {
  header: "echogate demo on {runtime}: the tutorial's programs, server and client side by side",
  legend: "On loopback, a free port each. Trace lines: ms since start, connection #, step.",
  server: "server",
  client: "client",
  prints: "prints",
  gateTitle: "gate: the tutorial's server.py, three runs of its client.py",
  gateIntro:
    "The server waits 5\u00a0s for the token (settimeout(5)); this demo shortens that to {timeout}\u00a0s, and its clients send at once instead of sleeping 2\u00a0s first.",
  gateWelcomeTitle: "1. the right token",
  gateWelcomeIntro:
    "The client connects and sends the token '1'; the server reads it with one recv(1024), answers and closes.",
  gateRefusedTitle: "2. a wrong token",
  gateRefusedIntro: "The same, but the client sends '2' instead of '1'.",
  gateTimeoutTitle: "3. a client that waits too long",
  gateTimeoutIntro: "This client connects and sends nothing, as if its sleep were longer than the server's timeout.",
  gateTimeoutEnd: "The client's recv(1024) returns b'' (0 bytes): the server has closed.",
  echoTitle: "echo: the tutorial's echo server and client",
  echoIntro:
    "The client sends 'Hello network world'; the server answers each recv(1024) with 'Echo=>' + what it read, until the client closes.",
  recvLargeTitle: "recv: a message over 1024 bytes",
  recvLargeIntro:
    "The client sends {bytes} bytes in one send; the server calls recv(1024) until it has them all. Each call returns at most 1024 bytes; the rest stays buffered for the next call.",
  recvLargeEnd: "{reads} reads ({sizes} bytes) for one send of {bytes} bytes.",
  recvMergedTitle: "recv: two quick sends, one read",
  recvMergedIntro:
    "The client sends 'Hello' and ' world' at once. The server waits until both are in its receive buffer (to make this run the same every time), then calls recv(1024) once.",
  recvMergedEnd: "2 sends, 1 read of {bytes} bytes: recv returns what is buffered, not one message.",
  noteLead: "how each runtime does this step:",
  done: "Done: every scenario ran. The tutorial's steps and each runtime's API: docs/learn.md",
};

const ZH: DemoText = {
  header: "echogate 演示 ({runtime}):教程中的程序,服务器端与客户端并排运行",
  legend: "在本机回环地址上,各用一个空闲端口。跟踪行:自开始的毫秒数、连接编号、步骤。",
  server: "服务器",
  client: "客户端",
  prints: "打印",
  gateTitle: "gate:教程中的 server.py,与三次运行的 client.py",
  gateIntro: "服务器等待口令 5 秒(settimeout(5));本演示缩短为 {timeout} 秒,客户端也不先 sleep 2 秒,而是立即发送。",
  gateWelcomeTitle: "1. 口令正确",
  gateWelcomeIntro: "客户端连接服务器,发送口令 '1';服务器用一次 recv(1024) 接收,回复后关闭连接。",
  gateRefusedTitle: "2. 口令错误",
  gateRefusedIntro: "同上,但客户端发送的是 '2' 而不是 '1'。",
  gateTimeoutTitle: "3. 客户端等得太久",
  gateTimeoutIntro: "这个客户端连接后什么也不发送,就像它的 sleep 比服务器的超时还长。",
  gateTimeoutEnd: "客户端的 recv(1024) 返回 b''(0 字节):服务器已关闭连接。",
  echoTitle: "echo:教程中的回显服务器端与客户端",
  echoIntro:
    "客户端发送 'Hello network world';服务器每次 recv(1024) 接收后回复 'Echo=>' 加上收到的数据,直到客户端关闭。",
  recvLargeTitle: "recv:超过 1024 字节的消息",
  recvLargeIntro:
    "客户端一次 send 发送 {bytes} 字节;服务器反复调用 recv(1024) 直到全部收到。每次最多返回 1024 字节,多余的数据缓冲于接收端,下次调用 recv 时再取出。",
  recvLargeEnd: "一次发送 {bytes} 字节,接收了 {reads} 次({sizes} 字节)。",
  recvMergedTitle: "recv:两次快速发送,一次接收",
  recvMergedIntro:
    "客户端连续发送 'Hello' 和 ' world'。服务器等到两者都已在接收缓冲区中(让每次运行结果相同),再调用一次 recv(1024)。",
  recvMergedEnd: "发送 2 次,接收 1 次共 {bytes} 字节:recv 返回缓冲区中已有的数据,而不是一条消息。",
  noteLead: "各运行时如何完成这一步:",
  done: "完成:所有场景都已运行。教程的步骤与各运行时的 API 见 docs/learn.md",
};

/**
 * The narration in `language`.
 *
 * @param language `"en"` or `"zh"`.
 * @returns Its texts.
 *
 * @example
 * ```ts
 * import { demoText } from "./text.ts";
 *
 * console.log(demoText("zh").server); // "服务器"
 * ```
 */
export function demoText(language: DemoLanguage): DemoText {
  return language === "zh" ? ZH : EN;
}

/**
 * Fills the `{name}` marks of `text` from `values`.
 *
 * @example
 * ```ts
 * import { fill } from "./text.ts";
 *
 * console.log(fill("{reads} reads", { reads: 3 })); // "3 reads"
 * ```
 */
export function fill(text: string, values: Record<string, string | number>): string {
  return text.replace(/\{(\w+)\}/g, (mark, name: string) => name in values ? String(values[name]) : mark);
}

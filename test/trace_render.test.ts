// The trace renderer on its own: another language is another vocabulary table, lines keep to 80
// columns whatever the labels and data, colour only on request, binary as hex.

import { describe, expect, test } from "vitest";
import {
  columns,
  renderTraceLine,
  TRACE_VOCABULARY_EN,
  type TraceRecord,
  type TraceVocabulary,
} from "../src/trace/mod.ts";

// What a Chinese table looks like (the demo's own lives with the demo): labels only.
const ZH: TraceVocabulary = {
  ...TRACE_VOCABULARY_EN,
  steps: {
    ...TRACE_VOCABULARY_EN.steps,
    socket: "创建套接字",
    bind: "绑定",
    listen: "监听",
    accept: "接受",
    recv: "接收",
    send: "发送",
    close: "关闭",
  },
};

const bytes = (text: string) => new TextEncoder().encode(text);
const RECORDS: TraceRecord[] = [
  {
    step: "listen",
    conn: 0,
    ms: 0.4,
    address: "unix:/var/run/a-rather-long-directory-name/echogate.sock",
    backlog: 511,
    together: ["socket", "bind"],
    api: "net.Server.listen()",
  },
  { step: "accept", conn: 12345, ms: 123456.7, peer: "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
  { step: "recv", conn: 1, ms: 5, bytes: 3000, preview: bytes("接收".repeat(32)) },
  { step: "send", conn: 1, ms: 5, bytes: 96, preview: new Uint8Array(96).fill(0xff) },
  { step: "recv", conn: 1, ms: 6, bytes: 0, preview: new Uint8Array(0) },
];

describe("renderTraceLine", () => {
  test("English by default; another vocabulary changes the words and nothing else", () => {
    const record: TraceRecord = {
      step: "listen",
      conn: 0,
      ms: 1.2,
      address: "127.0.0.1:50007",
      backlog: 511,
      together: ["socket", "bind"],
    };
    expect(renderTraceLine(record)).toBe("     1.2 ms #0  socket+bind+listen 127.0.0.1:50007 backlog 511 (one call)");
    expect(renderTraceLine(record, { vocabulary: ZH })).toBe(
      "     1.2 ms #0  创建套接字+绑定+监听 127.0.0.1:50007 backlog 511 (one call)",
    );
    expect(renderTraceLine({ step: "recv", conn: 1, ms: 2, bytes: 5, preview: bytes("hello") }, { vocabulary: ZH }))
      .toBe('     2.0 ms #1  接收     5 B "hello"');
  });

  test("every line fits 80 columns in either language, wide characters counted twice", () => {
    for (const vocabulary of [TRACE_VOCABULARY_EN, ZH]) {
      for (const record of RECORDS) {
        const line = renderTraceLine(record, { vocabulary });
        expect(columns(line), line).toBeLessThanOrEqual(80);
      }
    }
    const wide = renderTraceLine(RECORDS[2]!);
    expect(wide).toMatch(/^ +5\.0 ms #1 {2}recv +3000 B "接收接收.*…$/);
    expect(columns(wide)).toBeGreaterThanOrEqual(79);
    expect(renderTraceLine(RECORDS[3]!)).toMatch(/send +96 B hex ff ff ff .*…$/);
    expect(renderTraceLine(RECORDS[4]!)).toMatch(/recv +0 B \(EOF\)$/);
  });

  test("a preview cut in the middle of a character is still text; bytes that are not UTF-8 are hex", () => {
    const cut = bytes("a" + "接".repeat(40)).slice(0, 96); // 1 + 31 characters of 3 bytes, and 2 of the next
    expect(renderTraceLine({ step: "recv", conn: 1, ms: 1, bytes: 121, preview: cut })).toMatch(/recv +121 B "a接接/);
    const broken = new Uint8Array([0x61, 0xe6, 0x61]); // a lead byte followed by ASCII
    expect(renderTraceLine({ step: "recv", conn: 1, ms: 1, bytes: 3, preview: broken })).toMatch(
      /recv +3 B hex 61 e6 61$/,
    );
  });

  test("colour only when asked, never counted in the width", () => {
    for (const record of RECORDS) {
      expect(renderTraceLine(record)).not.toContain("\x1b");
      const coloured = renderTraceLine(record, { color: true });
      expect(coloured).toContain("\x1b[");
      // deno-lint-ignore no-control-regex
      expect(coloured.replace(/\x1b\[[0-9;]*m/g, "")).toBe(renderTraceLine(record));
    }
  });

  test("peer bytes are escaped: no control character reaches the line", () => {
    const line = renderTraceLine({ step: "proxy", conn: 1, ms: 1, client: "x\ny\u202e" });
    expect(line).toBe("     1.0 ms #1  proxy    client x\\x0Ay\\u202E");
  });
});

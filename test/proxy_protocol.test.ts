// The PROXY protocol parser and encoder (src/proxy_protocol/): property tests over every way a
// header can be split across reads, random and mutated bytes, and encoder/parser round trips.

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { encodeProxyHeader, type ProxyHeader, type ProxyParseResult, type ProxyTlv } from "../src/mod.ts";
import { parseIp } from "../src/ip.ts";
import { crc32c } from "../src/proxy_protocol/crc32c.ts";
import { ProxyHeaderTemplate } from "../src/proxy_protocol/encoder.ts";
import { PP2_TYPE, V1_MAX_BYTES, V2_MAX_LENGTH, V2_SIGNATURE } from "../src/proxy_protocol/header.ts";
import { formatIp } from "../src/ip.ts";
import { ProxyHeaderParser } from "../src/proxy_protocol/parser.ts";

const enc = new TextEncoder();
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
};

/** Feeds `bytes` cut at `cuts`; returns the outcome and every byte handed on after the header. */
function parseSplit(bytes: Uint8Array, cuts: number[]): { result: ProxyParseResult; payload: Uint8Array } {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) (chunks.push(bytes.subarray(from, p)), from = p);
  const parser = new ProxyHeaderParser();
  let result: ProxyParseResult = { status: "partial" };
  let i = 0;
  for (; i < chunks.length; i++) {
    result = parser.push(chunks[i]!);
    if (result.status !== "partial") break;
  }
  if (result.status !== "header") return { result, payload: new Uint8Array(0) };
  return { result, payload: concat([result.rest, ...chunks.slice(i + 1)]) };
}

const port = fc.integer({ min: 0, max: 65535 });
const v4 = fc.ipV4();
const v6 = fc.ipV6();
const payload = fc.uint8Array({ maxLength: 64 });
const cuts = (max: number) => fc.array(fc.integer({ min: 0, max }), { maxLength: 12 });

/** A valid header, with the fields a correct parser must report. */
interface Case {
  bytes: Uint8Array;
  expected: Pick<ProxyHeader, "version" | "command" | "source" | "destination">;
}

const v1Tcp4 = fc.tuple(v4, v4, port, port).map(([s, d, sp, dp]): Case => ({
  bytes: enc.encode(`PROXY TCP4 ${s} ${d} ${sp} ${dp}\r\n`),
  expected: {
    version: 1,
    command: "proxy",
    source: { transport: "tcp", hostname: s, port: sp },
    destination: { transport: "tcp", hostname: d, port: dp },
  },
}));
const v1Tcp6 = fc.tuple(v6, v6, port, port).map(([s, d, sp, dp]): Case => ({
  bytes: enc.encode(`PROXY TCP6 ${s} ${d} ${sp} ${dp}\r\n`),
  expected: {
    version: 1,
    command: "proxy",
    source: { transport: "tcp", hostname: s.toLowerCase(), port: sp },
    destination: { transport: "tcp", hostname: d.toLowerCase(), port: dp },
  },
}));
// "PROXY UNKNOWN", alone or followed by anything (no CR or LF) up to the 107-byte limit.
const v1Unknown = fc.option(fc.string({ maxLength: 90 }).map((s) => s.replace(/[\r\n]/g, "x")), { nil: undefined })
  .map((tail): Case => ({
    bytes: enc.encode(`PROXY UNKNOWN${tail === undefined ? "" : ` ${tail}`}\r\n`).subarray(0, V1_MAX_BYTES),
    expected: { version: 1, command: "proxy", source: undefined, destination: undefined },
  }))
  .filter((c) => c.bytes.at(-2) === 0x0d && c.bytes.at(-1) === 0x0a);
const tlv = fc.record({
  type: fc.integer({ min: 0, max: 255 }).filter((t) => t !== PP2_TYPE.CRC32C),
  value: fc.uint8Array({ maxLength: 40 }),
});
const tlvs = fc.array(tlv, { maxLength: 4 });
const v2Proxy = fc.tuple(fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6)), port, port, tlvs, fc.boolean())
  .map(([[s, d], sp, dp, list, crc]): Case => {
    const source = { transport: "tcp" as const, hostname: s, port: sp };
    const destination = { transport: "tcp" as const, hostname: d, port: dp };
    const canonical = (h: string) => formatIp(parseIp(h)!);
    return {
      bytes: encodeProxyHeader({ version: 2, source, destination, tlvs: list, crc32c: crc }),
      expected: {
        version: 2,
        command: "proxy",
        source: { ...source, hostname: canonical(s) },
        destination: { ...destination, hostname: canonical(d) },
      },
    };
  });
const v2Local = tlvs.map((list): Case => ({
  bytes: encodeProxyHeader({ version: 2, local: true, tlvs: list }),
  expected: { version: 2, command: "local", source: undefined, destination: undefined },
}));
const anyValid = fc.oneof(v1Tcp4, v1Tcp6, v1Unknown, v2Proxy, v2Local);

function checkCase(c: Case, body: Uint8Array, cutPoints: number[]) {
  const bytes = concat([c.bytes, body]);
  const { result, payload: after } = parseSplit(bytes, cutPoints);
  expect(result.status).toBe("header");
  if (result.status !== "header") return;
  expect(result.header.version).toBe(c.expected.version);
  expect(result.header.command).toBe(c.expected.command);
  expect(result.header.source).toEqual(c.expected.source);
  expect(result.header.destination).toEqual(c.expected.destination);
  expect(after).toEqual(body);
}

describe("PROXY protocol parser: every split of a valid header", () => {
  test("any cut points: the same header, and every byte after it handed on in order", () => {
    fc.assert(
      fc.property(anyValid, payload, cuts(200), (c, body, points) => checkCase(c, body, points)),
      { numRuns: 600 },
    );
  });

  test("byte by byte", () => {
    fc.assert(
      fc.property(anyValid, payload, (c, body) => {
        const bytes = concat([c.bytes, body]);
        checkCase(c, body, Array.from({ length: bytes.length }, (_, i) => i));
      }),
      { numRuns: 200 },
    );
  });

  test("every single cut point of one header of each kind", () => {
    for (const arb of [v1Tcp4, v1Tcp6, v1Unknown, v2Proxy, v2Local]) {
      const [c] = fc.sample(arb, { numRuns: 1, seed: 7 });
      const body = enc.encode("the payload");
      for (let cut = 0; cut <= c!.bytes.length + body.length; cut++) checkCase(c!, body, [cut]);
    }
  });

  test("every strict prefix of a valid header is partial, never invalid", () => {
    fc.assert(
      fc.property(anyValid, (c) => {
        const parser = new ProxyHeaderParser();
        for (let i = 0; i < c.bytes.length - 1; i++) {
          expect(parser.push(c.bytes.subarray(i, i + 1))).toEqual({ status: "partial" });
        }
        expect(parser.push(c.bytes.subarray(c.bytes.length - 1)).status).toBe("header");
      }),
      { numRuns: 300 },
    );
  });

  test("the payload is the same chunk: no copy of what follows the header", () => {
    const chunk = enc.encode("PROXY TCP4 192.0.2.7 198.51.100.1 40000 8001\r\nhello");
    const result = new ProxyHeaderParser().push(chunk);
    expect(result.status === "header" && result.rest.buffer).toBe(chunk.buffer);
  });
});

/** An independent reference check: is `bytes` exactly one valid header? */
function referenceValid(bytes: Uint8Array): boolean {
  if (bytes[0] === 0x50) {
    const line = new TextDecoder("latin1").decode(bytes);
    if (bytes.length > V1_MAX_BYTES || !line.endsWith("\r\n")) return false;
    const body = line.slice(0, -2);
    if (/[\r\n]/.test(body)) return false;
    if (body === "PROXY UNKNOWN" || body.startsWith("PROXY UNKNOWN ")) return true;
    const m = /^PROXY (TCP4|TCP6) (\S+) (\S+) (0|[1-9]\d{0,4}) (0|[1-9]\d{0,4})$/.exec(body);
    if (!m || Number(m[4]) > 65535 || Number(m[5]) > 65535) return false;
    const size = m[1] === "TCP4" ? 4 : undefined;
    return [m[2]!, m[3]!].every((a) =>
      size === 4 ? parseIp(a)?.length === 4 && !a.includes(":") : a.includes(":") && parseIp(a) !== undefined
    );
  }
  if (bytes.length < 16 || !V2_SIGNATURE.every((b, i) => bytes[i] === b)) return false;
  const length = (bytes[14]! << 8) | bytes[15]!;
  if (bytes.length !== 16 + length || length > V2_MAX_LENGTH) return false;
  if (bytes[12] === 0x20) return (bytes[13]! >> 4) <= 3 && (bytes[13]! & 15) <= 2;
  if (bytes[12] !== 0x21 || (bytes[13]! >> 4) > 3 || (bytes[13]! & 15) > 2) return false;
  let at = 16 + [0, 12, 36, 216][bytes[13]! >> 4]!;
  if (at > bytes.length) return false;
  let crcs = 0;
  while (at < bytes.length) {
    if (at + 3 > bytes.length) return false;
    const len = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    if (at + 3 + len > bytes.length) return false;
    if (bytes[at] === PP2_TYPE.CRC32C) {
      if (len !== 4 || ++crcs > 1) return false;
      const copy = bytes.slice();
      copy.fill(0, at + 3, at + 7);
      if (crc32c(copy) !== new DataView(bytes.buffer, bytes.byteOffset).getUint32(at + 3)) return false;
    }
    at += 3 + len;
  }
  return true;
}

/** Feeds `bytes` byte by byte (or in the given cuts); returns the outcome and how many bytes the header took. */
function consumed(bytes: Uint8Array, points: number[]): { result: ProxyParseResult; used: number } {
  const { result, payload: after } = parseSplit(bytes, points);
  return { result, used: bytes.length - after.length };
}

describe("PROXY protocol parser: random and damaged bytes", () => {
  const mutated = fc.tuple(anyValid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }))
    .map(([c, edits]) => {
      const bytes = c.bytes.slice();
      for (const [i, b] of edits) bytes[i % bytes.length] = b;
      return bytes;
    });
  const truncated = fc.tuple(anyValid, fc.nat()).map(([c, n]) => c.bytes.subarray(0, n % c.bytes.length));
  const noise = fc.uint8Array({ maxLength: 300 });
  const prefixed = fc.tuple(fc.constantFrom(enc.encode("PROXY "), V2_SIGNATURE), noise).map(([p, n]) => concat([p, n]));
  const inputs = fc.oneof(noise, prefixed, mutated, truncated);

  test("never throws, and a header is only ever reported for bytes that are one valid header", () => {
    fc.assert(
      fc.property(inputs, cuts(300), (bytes, points) => {
        const { result, used } = consumed(bytes, points);
        if (result.status === "header") expect(referenceValid(bytes.subarray(0, used))).toBe(true);
        if (result.status === "invalid") expect(typeof result.reason).toBe("string");
      }),
      { numRuns: 3000 },
    );
  });

  test("the outcome does not depend on how the bytes were split", () => {
    fc.assert(
      fc.property(inputs, cuts(300), (bytes, points) => {
        const whole = consumed(bytes, []);
        const split = consumed(bytes, points);
        expect(split.result.status).toBe(whole.result.status);
        if (whole.result.status === "header" && split.result.status === "header") {
          expect(split.result.header).toEqual(whole.result.header);
          expect(split.used).toBe(whole.used);
        }
      }),
      { numRuns: 1500 },
    );
  });

  test("parseWhole (a first chunk alone, no parser): the outcome of a parser fed byte by byte, or undefined only when that is partial or a v1 line", () => {
    const byByte = (bytes: Uint8Array) => consumed(bytes, Array.from({ length: bytes.length }, (_, i) => i));
    fc.assert(
      fc.property(
        fc.oneof(inputs, fc.tuple(anyValid, payload).map(([c, body]) => concat([c.bytes, body]))),
        (bytes) => {
          const whole = ProxyHeaderParser.parseWhole(bytes);
          const reference = byByte(bytes);
          if (whole === undefined) {
            // Not decided by the chunk alone: an incomplete v2 header, or not v2 at all (v1, noise).
            const v2Start = bytes.length >= 16 && bytes[0] === V2_SIGNATURE[0];
            expect(v2Start ? reference.result.status : "not v2").toBe(v2Start ? "partial" : "not v2");
            return;
          }
          expect(whole.status).toBe(reference.result.status);
          if (whole.status === "header" && reference.result.status === "header") {
            expect(whole.header).toEqual(reference.result.header);
            expect(bytes.length - whole.rest.length).toBe(reference.used);
            expect(whole.rest.buffer).toBe(bytes.buffer); // a view of the chunk, not a copy
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("pushing after the outcome says so instead of parsing again", () => {
    const parser = new ProxyHeaderParser();
    expect(parser.push(enc.encode("PROXY UNKNOWN\r\n")).status).toBe("header");
    expect(parser.push(enc.encode("PROXY UNKNOWN\r\n")).status).toBe("invalid");
  });
});

describe("PROXY protocol parser: refused at the first byte that cannot match", () => {
  /** The index of the byte at which byte-by-byte parsing turned invalid, and the reason. */
  function failsAt(bytes: Uint8Array): { at: number; reason: string } | undefined {
    const parser = new ProxyHeaderParser();
    for (let i = 0; i < bytes.length; i++) {
      const result = parser.push(bytes.subarray(i, i + 1));
      if (result.status === "invalid") return { at: i, reason: result.reason };
      if (result.status === "header") return undefined;
    }
    return undefined;
  }
  const v2 = (b12: number, b13: number, length: number, body: number[] = []) =>
    new Uint8Array([...V2_SIGNATURE, b12, b13, length >> 8, length & 0xff, ...body]);

  test.each([
    ["GET / HTTP/1.1\r\n", 0, "not a PROXY protocol header"],
    ["PROXY TCP5 1.2.3.4", 9, "unknown protocol"],
    ["PROXY TCP4 1.2.3.256 ", 19, "not an IPv4 address"],
    ["PROXY TCP4 1.2.3.4  ", 19, "empty field"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 0123", 28, "not a port"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 65536", 31, "not a port"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3", 30, "too many fields"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1\r", 28, "before the destination port"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx", 31, "CR not followed by LF"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 30, "LF without CR"],
    ["PROXY TCP6 ::1 1.2.3.x", 16, "not an IPv6 address"],
    ["PROXY TCP4 ::1", 11, "not an IPv4 address"],
    ["PROXY TCP6 12345", 15, "not an IPv6 address"],
    ["PROXY TCP6 1::2::", 16, "not an IPv6 address"],
    ["PROXY TCP6 1:2:3:4:5:6:7:8:9", 26, "not an IPv6 address"],
    ["PROXY TCP6 1.2.3.4", 12, "not an IPv6 address"],
    ["PROXY UNKNOWN x\ry", 16, "CR not followed by LF"],
  ])("v1 %j fails at byte %i (%s)", (line, at, reason) => {
    const failure = failsAt(enc.encode(line));
    expect(failure?.at).toBe(at);
    expect(failure?.reason).toContain(reason);
  });

  test("v1 without CRLF within 107 bytes is refused at the byte that leaves no room for it", () => {
    const long = enc.encode(`PROXY UNKNOWN ${"x".repeat(200)}`);
    expect(failsAt(long)?.at).toBe(V1_MAX_BYTES - 2);
    // The longest legal line parses.
    const longest = enc.encode(`PROXY UNKNOWN ${"x".repeat(V1_MAX_BYTES - 16)}\r\n`);
    expect(longest.length).toBe(V1_MAX_BYTES);
    expect(new ProxyHeaderParser().push(longest).status).toBe("header");
  });

  test("v2: bad signature, version, command, family, protocol, length", () => {
    expect(failsAt(new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0b]))?.at)
      .toBe(11);
    expect(failsAt(v2(0x11, 0x11, 12))).toMatchObject({ at: 12, reason: expect.stringContaining("version") });
    expect(failsAt(v2(0x22, 0x11, 12))).toMatchObject({ at: 12, reason: expect.stringContaining("command") });
    expect(failsAt(v2(0x21, 0x41, 12))).toMatchObject({ at: 13, reason: expect.stringContaining("family") });
    expect(failsAt(v2(0x21, 0x13, 12))).toMatchObject({ at: 13, reason: expect.stringContaining("protocol") });
    expect(failsAt(v2(0x21, 0x11, V2_MAX_LENGTH + 1))).toMatchObject({
      at: 15,
      reason: expect.stringContaining("too long"),
    });
    expect(failsAt(v2(0x21, 0x21, 12))).toMatchObject({ at: 15, reason: expect.stringContaining("shorter") });
  });

  test("v2: a TLV running past the header's end, a truncated TLV, a wrong CRC32C", () => {
    const addr = [127, 0, 0, 1, 127, 0, 0, 2, 0, 1, 0, 2];
    const outcome = (bytes: Uint8Array) => new ProxyHeaderParser().push(bytes);
    expect(outcome(v2(0x21, 0x11, 12 + 4, [...addr, 0x01, 0x00, 0x02, 0x68]))).toMatchObject({
      status: "invalid",
      reason: expect.stringContaining("past the header's end"),
    });
    expect(outcome(v2(0x21, 0x11, 12 + 2, [...addr, 0x01, 0x00]))).toMatchObject({
      status: "invalid",
      reason: expect.stringContaining("truncated TLV"),
    });
    const good = encodeProxyHeader({
      version: 2,
      source: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
      destination: { transport: "tcp", hostname: "127.0.0.2", port: 2 },
      tlvs: [{ type: PP2_TYPE.AUTHORITY, value: enc.encode("example.com") }],
      crc32c: true,
    });
    const result = outcome(good);
    expect(result.status).toBe("header");
    const tlvTypes = result.status === "header" ? result.header.tlvs.map((t: ProxyTlv) => t.type) : [];
    expect(tlvTypes).toEqual([PP2_TYPE.AUTHORITY, PP2_TYPE.CRC32C]);
    for (const at of [20, good.length - 1, good.length - 12]) {
      const bad = good.slice();
      bad[at]! ^= 0x01;
      expect(outcome(bad)).toMatchObject({ status: "invalid" });
    }
    const flipped = good.slice();
    flipped[good.length - 1]! ^= 0x01;
    expect(outcome(flipped)).toEqual({ status: "invalid", reason: "v2: CRC32C mismatch" });
  });

  test("v2 LOCAL skips its whole block, whatever it holds (HAProxy's health checks send length 0)", () => {
    const result = new ProxyHeaderParser().push(v2(0x20, 0x00, 5, [1, 2, 3, 4, 5, 0x61]));
    expect(result).toMatchObject({ status: "header", header: { command: "local", tlvs: [] } });
    expect(result.status === "header" && [...result.rest]).toEqual([0x61]);
  });
});

describe("PROXY protocol encoder", () => {
  test("round trip: whatever is encoded parses back to the same addresses and TLVs", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1 as const, 2 as const),
        fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6), fc.tuple(v4, v6)),
        port,
        port,
        tlvs,
        fc.boolean(),
        (version, [s, d], sp, dp, list, crc) => {
          const source = { transport: "tcp" as const, hostname: s, port: sp };
          const destination = { transport: "tcp" as const, hostname: d, port: dp };
          const bytes = encodeProxyHeader({ version, source, destination, tlvs: list, crc32c: crc });
          const result = new ProxyHeaderParser().push(bytes);
          expect(result.status).toBe("header");
          if (result.status !== "header") return;
          expect(result.rest.length).toBe(0);
          const same = (a: string, b: string) => {
            const x = parseIp(a)!;
            const y = parseIp(b)!;
            // A mixed pair goes out as IPv6, the IPv4 side mapped; parseIp reads mapped back as IPv4.
            expect([...y]).toEqual([...x]);
          };
          same(result.header.source!.transport === "tcp" ? result.header.source!.hostname : "", s);
          same(result.header.destination!.transport === "tcp" ? result.header.destination!.hostname : "", d);
          expect(result.header.source).toMatchObject({ port: sp });
          expect(result.header.destination).toMatchObject({ port: dp });
          if (version === 2) {
            const expected = [...list, ...(crc ? [PP2_TYPE.CRC32C] : [])].map((t) =>
              typeof t === "number" ? t : t.type
            );
            expect(result.header.tlvs.map((t) => t.type)).toEqual(expected);
            expect(result.header.tlvs.slice(0, list.length).map((t) => [...t.value])).toEqual(
              list.map((t) => [...t.value]),
            );
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  test("no addresses: v1 UNKNOWN, v2 PROXY over AF_UNSPEC; local: v2 LOCAL", () => {
    expect(new TextDecoder().decode(encodeProxyHeader({ version: 1 }))).toBe("PROXY UNKNOWN\r\n");
    expect([...encodeProxyHeader({ version: 2 }).subarray(12)]).toEqual([0x21, 0x00, 0, 0]);
    expect([...encodeProxyHeader({ version: 2, local: true }).subarray(12)]).toEqual([0x20, 0x00, 0, 0]);
  });

  test("a template writes, for every source port, the bytes encodeProxyHeader does (then the payload)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1 as const, 2 as const),
        fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6), fc.tuple(v4, v6)),
        fc.array(port, { minLength: 1, maxLength: 6 }),
        port,
        tlvs,
        fc.boolean(),
        fc.constantFrom(false, false, false, true), // sometimes v2 LOCAL
        fc.uint8Array({ maxLength: 8 }),
        (version, [s, d], ports, dp, list, crc, local, payload) => {
          const destination = { transport: "tcp" as const, hostname: d, port: dp };
          const init = { version, destination, tlvs: list, crc32c: crc, local };
          const template = new ProxyHeaderTemplate({ ...init, source: { transport: "tcp", hostname: s, port: 1 } });
          for (const sp of ports) {
            const expected = encodeProxyHeader({ ...init, source: { transport: "tcp", hostname: s, port: sp } });
            expect(template.byteLength(sp)).toBe(expected.length);
            expect([...template.encode(sp)]).toEqual([...expected]);
            expect([...template.encode(sp, payload)]).toEqual([...expected, ...payload]);
            // Into a buffer that held another header: every byte is written over.
            const target = new Uint8Array(3 + expected.length).fill(0xee);
            expect(template.encodeInto(sp, target, 3)).toBe(3 + expected.length);
            expect([...target.subarray(3)]).toEqual([...expected]);
          }
        },
      ),
      { numRuns: 300 },
    );
    const unknown = new ProxyHeaderTemplate({ version: 1 });
    expect(new TextDecoder().decode(unknown.encode(5000))).toBe("PROXY UNKNOWN\r\n");
    expect(() => unknown.encode(65536)).toThrow(TypeError);
  });

  test("checking a CRC32C leaves the chunk and the TLV as sent, even where slice() is a view (Node's Buffer)", () => {
    // Node's Buffer.slice() returns a view, not a copy: a check that zeroed the CRC field in a
    // "copy" made with it would zero it in the chunk (and in the TLV the header hands out).
    class ViewSlice extends Uint8Array {
      override slice(start?: number, end?: number): Uint8Array {
        return this.subarray(start, end);
      }
    }
    const encoded = encodeProxyHeader({
      version: 2,
      source: { transport: "tcp", hostname: "192.0.2.7", port: 40000 },
      destination: { transport: "tcp", hostname: "198.51.100.1", port: 8001 },
      crc32c: true,
    });
    const chunk = new ViewSlice(encoded.length + 1);
    chunk.set(encoded);
    const result = new ProxyHeaderParser().push(chunk);
    expect(result.status).toBe("header");
    expect([...chunk.subarray(0, encoded.length)]).toEqual([...encoded]);
    if (result.status !== "header") return;
    expect([...result.header.tlvs[0]!.value]).toEqual([...encoded.subarray(-4)]);
  });

  test("CRC32C matches the standard check value", () => {
    expect(crc32c(enc.encode("123456789"))).toBe(0xe3069283);
  });
});

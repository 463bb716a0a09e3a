// A minimal client of the V8 inspector protocol (Chrome DevTools Protocol over a WebSocket), so
// the soak run can read a server's V8 heap next to its RSS: `node --inspect=127.0.0.1:0` and
// `deno run --inspect=127.0.0.1:0` print "Debugger listening on ws://…" on standard error.
// Node 20 has no WebSocket client without a flag, so this speaks the little of RFC 6455 it
// needs: the upgrade, masked text frames out, unmasked (possibly fragmented) frames in.

import { randomBytes } from "node:crypto";
import net from "node:net";

/** The inspector's WebSocket URL in a line the runtime printed, if it is that line. */
export function inspectorUrl(line) {
  return /Debugger listening on (ws:\/\/\S+)/.exec(line)?.[1];
}

/** Lines the runtimes print on standard error about the inspector itself. */
export const INSPECTOR_NOTICE =
  /^(Debugger listening on |Visit chrome:\/\/inspect|For help, see: https:\/\/nodejs\.org|Debugger session (started|ended)|Debugger attached|Debugger ending on |Waiting for the debugger to disconnect)/;

/**
 * Opens a session on `url` (ws://host:port/path).
 *
 * @returns {Promise<{ send(method: string, params?: object): Promise<any>, close(): void }>}
 */
export function openInspector(url) {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const pending = new Map();
    let nextId = 1;
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    let message = [];
    const timer = setTimeout(() => (socket.destroy(), reject(new Error("inspector: no upgrade in 10 s"))), 10_000);
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
      for (const { reject } of pending.values()) reject(error);
      pending.clear();
    });
    socket.on("close", () => {
      for (const { reject } of pending.values()) reject(new Error("inspector: connection closed"));
      pending.clear();
    });
    socket.on("connect", () => {
      socket.write(
        `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString("latin1");
        buffer = buffer.subarray(end + 4);
        clearTimeout(timer);
        if (!/^HTTP\/1\.1 101/.test(head)) {
          socket.destroy();
          return reject(new Error(`inspector: ${head.split("\r\n")[0]}`));
        }
        upgraded = true;
        resolve(session);
      }
      // Frames: FIN and opcode, then a 7-bit length (126: 16-bit follows, 127: 64-bit follows).
      while (buffer.length >= 2) {
        const fin = (buffer[0] & 0x80) !== 0;
        const opcode = buffer[0] & 0x0f;
        let length = buffer[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + length) return;
        const payload = buffer.subarray(offset, offset + length);
        buffer = buffer.subarray(offset + length);
        if (opcode === 8) return socket.destroy(); // close
        if (opcode === 9) send(0xa, payload); // ping: pong
        if (opcode !== 0 && opcode !== 1) continue;
        message.push(Buffer.from(payload));
        if (!fin) continue;
        const text = Buffer.concat(message).toString("utf8");
        message = [];
        const reply = JSON.parse(text);
        const waiter = pending.get(reply.id);
        if (waiter === undefined) {
          if (reply.method !== undefined) session.onEvent?.(reply.method, reply.params); // an event, not a reply
          continue;
        }
        pending.delete(reply.id);
        if (reply.error) waiter.reject(new Error(`inspector: ${reply.error.message}`));
        else waiter.resolve(reply.result);
      }
    });

    function send(opcode, payload) {
      const mask = randomBytes(4);
      const length = payload.length;
      const head = length < 126
        ? Buffer.from([0x80 | opcode, 0x80 | length])
        : length < 65536
        ? Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff])
        : (() => {
          const b = Buffer.alloc(10);
          b[0] = 0x80 | opcode;
          b[1] = 0x80 | 127;
          b.writeBigUInt64BE(BigInt(length), 2);
          return b;
        })();
      const masked = Buffer.alloc(length);
      for (let i = 0; i < length; i++) masked[i] = payload[i] ^ mask[i & 3];
      socket.write(Buffer.concat([head, mask, masked]));
    }

    const session = {
      send(method, params = {}, ms = 30_000) {
        const id = nextId++;
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            pending.delete(id);
            reject(new Error(`inspector: ${method} took over ${ms} ms`));
          }, ms);
          pending.set(id, {
            resolve: (value) => (clearTimeout(timer), resolve(value)),
            reject: (error) => (clearTimeout(timer), reject(error)),
          });
          send(1, Buffer.from(JSON.stringify({ id, method, params })));
        });
      },
      close() {
        socket.destroy();
      },
    };
  });
}

/**
 * The V8 heap of the inspected process, in MiB: `used`/`committed` (Runtime.getHeapUsage), and
 * the runtime's own memoryUsage() (`heapUsed`, `heapTotal`, `external`: memory V8 was told of,
 * such as ArrayBuffer backing stores).
 */
export async function heapSample(session, runtime) {
  const MiB = 1024 * 1024;
  const usage = await session.send("Runtime.getHeapUsage");
  const expression = runtime === "deno"
    ? "JSON.stringify(Deno.memoryUsage())"
    : "JSON.stringify(process.memoryUsage())";
  const evaluated = await session.send("Runtime.evaluate", { expression, returnByValue: true });
  const memory = JSON.parse(evaluated.result.value);
  const r = (v) => Math.round((v / MiB) * 10) / 10;
  return {
    heapUsed: r(usage.usedSize),
    heapCommitted: r(usage.totalSize),
    external: r(memory.external ?? 0),
    ...(memory.arrayBuffers !== undefined && { arrayBuffers: r(memory.arrayBuffers) }),
    ...await spaceSample(session, r),
  };
}

// Which part of the heap holds the committed memory: V8's spaces through node:v8 (Deno has it
// too), as `newSpace`, `oldSpace`, `largeObjects` (old and new large-object spaces) and `otherSpaces`
// (code, trusted, …), each committed (physical) MiB; `newUsed` and `oldUsed` next to them.
const SPACES = `JSON.stringify(globalThis.process?.getBuiltinModule?.("node:v8")?.getHeapSpaceStatistics())`;

async function spaceSample(session, r) {
  const evaluated = await session.send("Runtime.evaluate", {
    expression: SPACES,
    returnByValue: true,
  });
  if (evaluated.exceptionDetails || typeof evaluated.result?.value !== "string") return {};
  const spaces = JSON.parse(evaluated.result.value);
  const sum = (test, key = "physical_space_size") =>
    r(spaces.filter((s) => test(s.space_name)).reduce((n, s) => n + s[key], 0));
  const large = (name) => /lo_space$/.test(name);
  return {
    newSpace: sum((n) => n === "new_space"),
    newUsed: sum((n) => n === "new_space", "space_used_size"),
    oldSpace: sum((n) => n === "old_space"),
    oldUsed: sum((n) => n === "old_space", "space_used_size"),
    largeObjects: sum(large),
    otherSpaces: sum((n) => n !== "new_space" && n !== "old_space" && !large(n)),
  };
}

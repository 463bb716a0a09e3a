/**
 * HAProxy's runtime API (the `stats socket … level admin` CLI), as much of it as fleet penalties
 * need: one connection per exchange (HAProxy 2.6 answers a command line and closes, unless
 * asked for `prompt` mode), commands built only from validated parts.
 *
 * @module
 */

import { within } from "../_timers.ts";
import { UsageError } from "../errors.ts";
import { parseIp } from "../ip.ts";
import type { Endpoint, StreamSocket, Transport } from "../types.ts";

/** Where a runtime API listens, and how the operator wrote it (for log lines). */
export interface RuntimeApiTarget {
  /** As given: `unix:PATH` or `HOST:PORT`. */
  label: string;
  endpoint: Endpoint;
}

/** A stick table's key type, as `show table` reports it; only these two hold addresses. */
export type TableKeyType = "ip" | "ipv6";

/** The longest answer read from HAProxy; an exchange is a few lines. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Reads `--haproxy-runtime`'s comma-separated addresses: `unix:PATH`, `HOST:PORT` or `[v6]:PORT`.
 *
 * @param text The flag's value.
 * @returns One target per address.
 * @throws {UsageError} On an address of another form.
 *
 * @example
 * ```ts
 * import { parseRuntimeApiTargets } from "./runtime_api.ts";
 *
 * console.log(parseRuntimeApiTargets("unix:/run/haproxy/admin.sock,10.0.0.2:9999").length); // 2
 * ```
 */
export function parseRuntimeApiTargets(text: string): RuntimeApiTarget[] {
  return text.split(",").map((part) => {
    const label = part.trim();
    if (label.startsWith("unix:") && label.length > 5) return { label, endpoint: { path: label.slice(5) } };
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(label);
    const port = match ? Number(match[3]) : 0;
    if (!match || port < 1 || port > 65535) {
      throw new UsageError(
        `Invalid value for "--haproxy-runtime": "${label}" is not unix:PATH or HOST:PORT`,
      );
    }
    return { label, endpoint: { hostname: match[1] ?? match[2]!, port } };
  });
}

/**
 * Whether `name` may be a stick table's name here: letters, digits, `.`, `_` and `-`, as
 * HAProxy's own identifiers (so nothing written to the runtime API can end or add a command).
 *
 * @param name The table's name.
 * @returns True when it is safe and plausible.
 *
 * @example
 * ```ts
 * import { isTableName } from "./runtime_api.ts";
 *
 * console.log(isTableName("penalised"), isTableName("t; clear table t")); // true false
 * ```
 */
export function isTableName(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,64}$/.test(name);
}

/**
 * The stick table key HAProxy looks a source up by: an IPv4 address as it is (in an `ipv6`
 * table as `::ffff:a.b.c.d`, as HAProxy converts an IPv4 `src`), an IPv6 source as its /64's
 * network address (the config masks `src` with `ipmask(32,64)`). Made from the parsed bytes
 * only, so it holds nothing but digits, hex digits, dots and colons.
 *
 * @param address An address of the source.
 * @param type The table's key type.
 * @returns The key, or `undefined` when the table cannot hold it (IPv6 in an `ip` table) or it is not an IP address.
 *
 * @example
 * ```ts
 * import { tableKey } from "./runtime_api.ts";
 *
 * console.log(tableKey("2001:db8:1:2::7", "ipv6")); // "2001:db8:1:2::"
 * console.log(tableKey("192.0.2.7", "ipv6")); // "::ffff:192.0.2.7"
 * ```
 */
export function tableKey(address: string, type: TableKeyType): string | undefined {
  const bytes = parseIp(address);
  if (!bytes) return undefined;
  if (bytes.length === 4) return type === "ip" ? bytes.join(".") : `::ffff:${bytes.join(".")}`;
  if (type === "ip") return undefined;
  const groups = [];
  for (let i = 0; i < 8; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return `${groups.join(":")}::`;
}

/**
 * Sends one command line (commands joined by `;`) and reads the answer until HAProxy closes.
 *
 * @param transport The runtime's transport.
 * @param target The runtime API.
 * @param line The commands, without the newline.
 * @param timeoutMs How long connecting and answering may take together.
 * @returns HAProxy's answer.
 * @throws {Error} When it cannot connect, times out, or answers more than 64 KiB.
 *
 * @example
 * ```ts ignore
 * const answer = await runtimeApiExchange(transport, target, "show table", 5000);
 * ```
 */
export async function runtimeApiExchange(
  transport: Transport,
  target: RuntimeApiTarget,
  line: string,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const connecting = transport.connect(target.endpoint);
  const socket = await within(connecting, timeoutMs);
  if (typeof socket === "symbol") {
    void connecting.then((late) => late.close(), () => {});
    throw new Error(`no connection within ${timeoutMs} ms`);
  }
  try {
    const answer = await within(exchangeOn(socket, line), Math.max(1, deadline - Date.now()));
    if (typeof answer === "symbol") throw new Error(`no answer within ${timeoutMs} ms`);
    return answer;
  } finally {
    socket.close();
  }
}

async function exchangeOn(socket: StreamSocket, line: string): Promise<string> {
  await socket.write(new TextEncoder().encode(`${line}\n`));
  const decoder = new TextDecoder();
  let answer = "";
  let size = 0;
  for (let chunk = await socket.read(); chunk !== null; chunk = await socket.read()) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) throw new Error(`answer longer than ${MAX_ANSWER_BYTES} bytes`);
    answer += decoder.decode(chunk, { stream: true });
  }
  return answer + decoder.decode();
}

/**
 * Finds stick table `name` in the answer to `show table` and returns its key type.
 *
 * @param answer What `show table` printed (`# table: NAME, type: TYPE, size:…, used:…` per table).
 * @param name The table.
 * @returns Its key type.
 * @throws {Error} When the table is missing or its keys are not addresses.
 *
 * @example
 * ```ts
 * import { tableTypeIn } from "./runtime_api.ts";
 *
 * console.log(tableTypeIn("# table: penalised, type: ipv6, size:102400, used:0\n\n", "penalised")); // "ipv6"
 * ```
 */
export function tableTypeIn(answer: string, name: string): TableKeyType {
  for (const line of answer.split("\n")) {
    const match = /^# table: ([^,]+), type: ([^,]+),/.exec(line);
    if (!match || match[1] !== name) continue;
    if (match[2] === "ip" || match[2] === "ipv6") return match[2];
    throw new Error(`stick table "${name}" has keys of type ${match[2]}, not ip or ipv6`);
  }
  const said = answer.trim().split("\n")[0];
  throw new Error(
    said && !said.startsWith("# table:") ? `"show table" failed: ${said.slice(0, 200)}` : `no stick table "${name}"`,
  );
}

/**
 * The UDP echo client: one datagram per message, each waited for, sent again when no reply
 * comes in time.
 *
 * @module
 */

import { endsWith } from "../_bytes.ts";
import { isSpecificIp } from "../address.ts";
import { errorMessage } from "../log.ts";
import { parseIp } from "../ip.ts";
import { TIMED_OUT, within } from "../_timers.ts";
import type { DatagramSocket, Transport } from "../types.ts";

/** Default wait for one reply before sending again, in ms. */
export const DEFAULT_UDP_TIMEOUT_MS = 1000;
/** Default number of times a message is sent again when no reply came. */
export const DEFAULT_UDP_RETRIES = 3;

/**
 * Options for {@linkcode sendDatagrams}.
 *
 * @example
 * ```ts
 * import type { SendDatagramsOptions } from "./mod.ts";
 *
 * const options: Omit<SendDatagramsOptions, "transport"> = {
 *   hostname: "::1",
 *   port: 50007,
 *   messages: [new TextEncoder().encode("hi")],
 *   retries: 5,
 * };
 * ```
 */
export interface SendDatagramsOptions {
  /** The runtime's socket API; it must have `bindDatagram`. */
  transport: Transport;
  /** The server: an IP address or a name. @default {"localhost"} */
  hostname?: string;
  /** The server's port. */
  port: number;
  /** One datagram each, sent in order. */
  messages: readonly Uint8Array[];
  /** How long to wait for each reply before sending the message again, in ms. @default {1000} */
  timeoutMs?: number;
  /** How many times a message is sent again before giving up. @default {3} */
  retries?: number;
  /** Called with each reply as it arrives. */
  onReply?: (reply: Uint8Array, message: Uint8Array) => void;
}

/**
 * Sends each message as one datagram and waits for its reply, sending it again after
 * `timeoutMs` up to `retries` times. Only datagrams from the server's address and port count.
 * A late reply to an earlier message (one that ends with that message, not with this one) is
 * skipped, so a retry's duplicate never stands in for the next reply.
 *
 * @param options The server, the messages and the retry policy.
 * @returns One reply per message. Rejects when a message got no reply after every retry.
 *
 * @example
 * ```ts ignore
 * import { sendDatagrams } from "./mod.ts";
 * import { transport } from "../adapters/bun.ts";
 *
 * const [reply] = await sendDatagrams({ transport, hostname: "127.0.0.1", port: 50007, messages: [new Uint8Array([1])] });
 * ```
 */
export async function sendDatagrams(options: SendDatagramsOptions): Promise<Uint8Array[]> {
  const { transport } = options;
  if (!transport.bindDatagram) throw new TypeError(`The ${transport.runtime} transport has no datagram sockets`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_UDP_TIMEOUT_MS;
  const retries = options.retries ?? DEFAULT_UDP_RETRIES;
  const name = options.hostname ?? "localhost";
  const server = isSpecificIp(name) ? name : await transport.lookup?.(name) ?? name;
  const port = options.port;
  const checkHost = parseIp(server) !== undefined; // a name the runtime looks up: any sender on the port
  const inbox: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  const socket: DatagramSocket = await transport.bindDatagram({
    hostname: server.includes(":") ? "::" : "0.0.0.0",
    port: 0,
  }, {
    onMessage(bytes, hostname, fromPort) {
      if (fromPort !== port || (checkHost && !sameHost(hostname, server))) return; // not the server's
      inbox.push(bytes);
      wake?.();
    },
    onError(error) {
      // ECONNREFUSED from an ICMP port unreachable: nothing listens there. Retries go on (the
      // server may be starting), the last failure is reported if no reply ever comes.
      failure = error;
      wake?.();
    },
  });
  const replies: Uint8Array[] = [];
  try {
    for (const [index, message] of options.messages.entries()) {
      const earlier = options.messages.slice(0, index).filter((m) => !endsWith(message, m));
      let reply: Uint8Array | undefined;
      for (let attempt = 0; attempt <= retries && reply === undefined; attempt++) {
        while (!socket.send(message, server, port)) await new Promise<void>((resolve) => socket.onDrain(resolve));
        const deadline = Date.now() + timeoutMs;
        while (reply === undefined) {
          const next = inbox.shift();
          if (next !== undefined) {
            // A late echo of an earlier message ends with that message and not with this one.
            if (!earlier.some((m) => endsWith(next, m))) reply = next;
            continue;
          }
          const woken = await within(new Promise<void>((resolve) => (wake = resolve)), deadline - Date.now());
          wake = undefined;
          if (woken === TIMED_OUT) break;
        }
      }
      if (reply === undefined) {
        const why = failure === undefined ? "" : ` (last error: ${errorMessage(failure)})`;
        throw new Error(
          `No reply to message ${index + 1} after ${retries + 1} tries of ${timeoutMs / 1000} s each${why}`,
        );
      }
      replies.push(reply);
      options.onReply?.(reply, message);
    }
  } finally {
    await socket.close();
  }
  return replies;
}

/** Whether two IP addresses are the same, an IPv4-mapped IPv6 address matching its IPv4 form. */
function sameHost(a: string, b: string): boolean {
  const plain = (address: string) => address.startsWith("::ffff:") ? address.slice(7) : address;
  return plain(a) === plain(b) || plain(a).toLowerCase() === plain(b).toLowerCase();
}

// Baseline UDP echo server on Bun.udpSocket, written the plain, fast, idiomatic way, for
// `npm run bench`: every datagram answered with prefix + datagram from the data handler.
//
//   bun bench/baseline/udp_bun.ts udp [--mode raw|chunk] [--prefix 'Echo=>'] [--host 127.0.0.1] [--port 0]
//
// Prints "listening on HOST:PORT" once ready. No logging, no limits: just the protocol.

import process from "node:process";
import { baselineOptions } from "./_options.mjs";

interface UdpSocket {
  readonly port: number;
  send(bytes: Uint8Array, port: number, hostname: string): boolean;
}
const Bun = (globalThis as unknown as {
  Bun: {
    udpSocket(options: {
      hostname: string;
      port: number;
      socket: {
        data(socket: UdpSocket, bytes: Uint8Array, port: number, hostname: string): void;
        error(error: Error): void;
      };
    }): Promise<UdpSocket>;
  };
}).Bun;

const { values } = baselineOptions(process.argv.slice(2));
const prefix = new TextEncoder().encode(values.mode === "raw" ? "" : values.prefix);
const socket = await Bun.udpSocket({
  hostname: values.host,
  port: Number(values.port),
  socket: {
    data(socket, bytes, port, hostname) {
      if (prefix.length === 0) return void socket.send(bytes, port, hostname);
      const reply = new Uint8Array(prefix.length + bytes.length);
      reply.set(prefix);
      reply.set(bytes, prefix.length);
      socket.send(reply, port, hostname);
    },
    error() {}, // without it an ICMP error ends the process (oven-sh/bun#29116)
  },
});
console.log(`bun baseline udp listening on ${values.host}:${socket.port}`);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));

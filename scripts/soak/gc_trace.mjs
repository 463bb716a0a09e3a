// Reads what V8 printed with --trace-gc-nvp (one "GC: {…}" line per collection; the soak keeps it
// with --server-output DIR) and says when the young generation changed size and what survived the
// scavenges before it: V8 doubles the new space once enough young objects have survived since the
// last change, so its steps follow the bytes that survive, not the bytes allocated.
//
//   npm run soak -- --minutes 7 --runtime deno --heap --server-flags "--v8-flags=--trace-gc-nvp" \
//     --server-output /tmp/gc
//   node scripts/soak/gc_trace.mjs /tmp/gc/echo.txt [--every 60]
//
// Times are from the server's start (V8's clock), in minutes.

import { readFileSync } from "node:fs";
import { parseCommandLine } from "../_args.mjs";

const USAGE = "Usage: node scripts/soak/gc_trace.mjs TRACE.txt [--every SECONDS]";
const { values, positionals } = parseCommandLine("gc_trace", USAGE, {
  allowPositionals: true,
  strings: { every: "60" },
});
const file = positionals[0];
const every = Number(values.every) || 60;
if (file === undefined) {
  console.error(USAGE);
  process.exit(2);
}

const MiB = 1024 * 1024;
const gcs = [];
for (const line of readFileSync(file, "utf8").split("\n")) {
  const match = /^\[[^\]]*\]\s+(\d+) ms: GC: (\{.*\})$/.exec(line);
  if (match === null) continue;
  try {
    const gc = JSON.parse(match[2]);
    if (typeof gc.new_space_capacity === "number") gcs.push({ ms: Number(match[1]), ...gc });
  } catch {
    // A line another write cut into (the runtime's stdout is shared): skipped.
  }
}

const f = (v, digits = 1) => v.toFixed(digits);
let capacity = 0;
let survivedSinceChange = 0;
let bucket;
const rows = [];
const flush = () => bucket && rows.push(bucket);
for (const gc of gcs) {
  const survived = gc.promoted + gc.new_space_survived;
  const index = Math.floor(gc.ms / (every * 1000));
  if (bucket?.index !== index) {
    flush();
    bucket = { index, scavenges: 0, fullGcs: 0, survived: 0, promoted: 0, capacity: 0 };
  }
  if (gc.gc === "s") {
    bucket.scavenges++;
    bucket.survived += survived;
    bucket.promoted += gc.promoted;
  } else bucket.fullGcs++;
  bucket.capacity = gc.new_space_capacity;
  survivedSinceChange += survived;
  if (gc.new_space_capacity !== capacity) {
    console.log(
      `${f(gc.ms / 60_000, 2).padStart(6)} min: new space ${capacity / MiB} -> ${gc.new_space_capacity / MiB} MiB ` +
        `(${gc.gc === "s" ? "scavenge" : "full GC"}, ${gc.reason}; ${
          f(survivedSinceChange / MiB)
        } MiB survived since the last change)`,
    );
    capacity = gc.new_space_capacity;
    survivedSinceChange = 0;
  }
}
flush();

console.log(
  `\nper ${every} s: scavenges, full GCs, new space (MiB), survived per scavenge (KiB) of it promoted, survived/min (MiB)`,
);
for (const b of rows) {
  const perScavenge = (v) => f(v / 1024 / Math.max(1, b.scavenges));
  console.log(
    `${f((b.index * every) / 60, 1).padStart(6)} min ${String(b.scavenges).padStart(5)} ${
      String(b.fullGcs).padStart(4)
    } ` +
      `${String(b.capacity / MiB).padStart(4)} ${perScavenge(b.survived).padStart(7)} ${
        perScavenge(b.promoted).padStart(6)
      } ` +
      `${f(b.survived / MiB / (every / 60), 2).padStart(6)}`,
  );
}

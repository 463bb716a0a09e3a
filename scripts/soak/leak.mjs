// A deliberate leak, for checking the soak's verdict: `npm run soak -- --leak KIB_PER_MIN` loads
// this into every server (node --import, deno and bun --preload). Each second it keeps 1/60 of
// that, half as JS strings (old space, once promoted) and half as a buffer (external memory),
// never freed. A run with a leak above the verdict's 1 MiB/min limit must fail.

const kibPerMinute = Number(globalThis.process?.env?.ECHOGATE_SOAK_LEAK_KIB_PER_MIN ?? 0);
const kept = [];
const encoder = new TextEncoder();
const decoder = new TextDecoder();
if (kibPerMinute > 0) {
  const bytesPerSecond = (kibPerMinute * 1024) / 60;
  const timer = setInterval(() => {
    // Distinct 1 KiB strings, decoded from bytes so that each is one flat string of its length on
    // the V8 heap (padEnd or repeat would share their filler).
    const strings = Array.from({ length: Math.round(bytesPerSecond / 2 / 1024) }, (_, i) => {
      const bytes = new Uint8Array(1024).fill(46);
      bytes.set(encoder.encode(`${kept.length}:${i}:`));
      return decoder.decode(bytes);
    });
    kept.push(strings, new Uint8Array(Math.round(bytesPerSecond / 2)).fill(1));
  }, 1000);
  // Not what keeps a server running: it must still exit once it has closed on SIGTERM.
  if (typeof timer === "object") timer.unref?.();
  else globalThis.Deno?.unrefTimer?.(timer);
}

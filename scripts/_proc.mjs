// What Linux's /proc says of a process: CPU time, memory, descriptors, threads, children. Shared by
// `npm run bench`, the soak and the one-off bench scripts (test/_utils.ts has its own copy for now).
// Each reader throws once the process is gone; `orZero` turns that into 0 where a sum over a
// process tree may meet one that just exited.

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let clockTicks;
/** Clock ticks per second, the unit of /proc/<pid>/stat's CPU times (asked once; 100 on usual kernels). */
export function clockTicksPerSecond() {
  clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  return clockTicks;
}

/** User and system CPU seconds (all threads) a process has used, from /proc/<pid>/stat. */
export function cpuTimes(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const ticks = clockTicksPerSecond();
  return { user: Number(fields[11]) / ticks, system: Number(fields[12]) / ticks };
}

/** CPU seconds (user + system, all threads) a process has used. */
export function cpuSeconds(pid) {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** Resident memory of a process in KiB, from /proc/<pid>/status VmRSS (0 where the line is missing). */
export function rssKiB(pid) {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
}

/** RSS split into anonymous memory (heaps, buffers) and file-backed pages (the binary), in KiB. */
export function rssPartsKiB(pid) {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { anon: kb("Anonymous"), file: kb("Rss") - kb("Anonymous") };
}

/** Open file descriptors of a process. */
export const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/** Threads of a process, from /proc/<pid>/status. */
export const threadCount = (pid) => Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);

/** A process and all its descendants (its main thread's children, recursively); a gone process has none. */
export function processTree(pid) {
  let children = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(
      Number,
    );
  } catch {
    // gone
  }
  return [pid, ...children.flatMap(processTree)];
}

/** `read(pid)`, or 0 once the process is gone. */
export function orZero(read, pid) {
  try {
    return read(pid);
  } catch {
    return 0;
  }
}

/** The load average over 1, 5 and 15 minutes, as /proc/loadavg words ("0.52 0.61 0.70"). */
export const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

/** Kills process group `pid` (a child spawned with `detached: true`, and all it started); gone is fine. */
export function killGroup(pid) {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

// Finds the processes a test run left behind. scripts/test.mjs tags everything it starts with
// ECHOGATE_TEST_RUN=<id> in the environment, which every descendant inherits; at the end of the run
// any live process still carrying the tag is a leftover (a server a test forgot, or one a crashed
// suite could not stop).

import { readdirSync, readFileSync } from "node:fs";

/** The environment variable that tags a run's processes. */
export const TEST_RUN_VARIABLE = "ECHOGATE_TEST_RUN";

/** Live processes (not zombies) whose environment carries `TEST_RUN_VARIABLE=id`, as `{ pid, command }`. */
export function taggedProcesses(id) {
  const tag = `${TEST_RUN_VARIABLE}=${id}`;
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, "latin1").split("\0").includes(tag)) continue;
      const state = readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]?.split(" ")[0];
      if (state === "Z" || state === "X") continue; // exited; only its parent has yet to reap it
      const command = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim();
      found.push({ pid: Number(entry), command });
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

/**
 * Waits up to `ms` for the run's processes to end, then kills and returns those still there.
 * Returns undefined where /proc cannot be read (not Linux): nothing to check with.
 */
export async function leftoverProcesses(id, ms = 5000) {
  try {
    readdirSync("/proc/self/fd");
  } catch {
    return undefined;
  }
  const end = Date.now() + ms;
  let left = taggedProcesses(id);
  while (left.length > 0 && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    left = taggedProcesses(id);
  }
  for (const { pid } of left) killQuietly(pid);
  return left;
}

/** SIGKILL to `pid`, if it still exists. */
export function killQuietly(pid) {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Gone meanwhile.
  }
}

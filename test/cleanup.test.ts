// What a test starts, it ends: a child's stop() kills its whole process group, so a server started
// through a shell or a launcher (npx) does not outlive the test.

import { describe, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { RUNTIME, startChild, waitFor, waitUntil } from "./_utils.ts";

/** A process's state letter from /proc (Z: exited, not yet reaped), or undefined once it is gone. */
function processState(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[0];
  } catch {
    return undefined;
  }
}

describe(`test cleanup on ${RUNTIME}`, () => {
  test("stop() ends the child and everything it started", async () => {
    const shell = startChild(["sh", "-c", "sleep 600 & echo $!; wait"]);
    const grandchild = Number(await waitFor(() => /^(\d+)\n/.exec(shell.stdout())?.[1], 10_000, "the pid of sleep"));
    expect(processState(grandchild)).toMatch(/[SR]/);
    await shell.stop();
    await waitUntil(() => [undefined, "Z"].includes(processState(grandchild)), {
      timeoutMs: 5000,
      what: "sleep to end",
    });
  });
});

// Runs a command that prints one JSON report (`echogate bench --json`) and resolves with it: for the one-off bench
// scripts that load long-lived servers in turn.

import { spawn } from "node:child_process";

/** Runs `command` (stderr passed through) and resolves with its stdout parsed as JSON; rejects without a report. */
export function runJson(command) {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.on("close", () => {
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`the generator gave no report: ${out}`));
      }
    });
  });
}

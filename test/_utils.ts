// Shared test helpers. Tests run under node, deno and bun; everything here uses APIs all three have.
// By concern: _wait.ts (deadlines, polling), _net.ts (the adapter, sockets, bytes), _child.ts (child processes,
// the CLI), _proc.ts (/proc); this file adds what ties them to a test (logging, cleanup) and re-exports them all.

import { afterEach } from "vitest";
import type { LogEvent, Logger } from "../src/mod.ts";
import { type Child, stopTree } from "./_child.ts";
import { waitFor } from "./_wait.ts";

export * from "./_child.ts";
export * from "./_net.ts";
export * from "./_proc.ts";
export * from "./_wait.ts";

/** A logger that records events, with a helper to wait for one. */
export function recordingLogger(): Logger & {
  events: LogEvent[];
  waitForEvent(name: string, ms?: number): Promise<LogEvent>;
} {
  const events: LogEvent[] = [];
  return {
    events,
    log: (event) => void events.push(event),
    waitForEvent: (name, ms = 5000) => waitFor(() => events.find((e) => e.event === name), ms, `a "${name}" event`),
  };
}

/** What {@linkcode cleanup} tracks: servers and sockets, child processes, child process trees. */
export interface Cleanup {
  add<T extends { close(): unknown }>(resource: T): T;
  child<T extends Child>(child: T): T;
  /** A child that starts processes of its own (a supervisor and its workers): all of them are stopped. */
  tree<T extends Child>(child: T): T;
  run(): Promise<void>;
}

/** Tracks servers and sockets so `afterEach` can close every one of them. */
export function cleanup(): Cleanup {
  const resources: { close(): unknown }[] = [];
  const children: Child[] = [];
  const trees: Child[] = [];
  return {
    add(resource) {
      resources.push(resource);
      return resource;
    },
    child(child) {
      children.push(child);
      return child;
    },
    tree(child) {
      trees.push(child);
      return child;
    },
    async run() {
      for (const tree of trees.splice(0)) await stopTree(tree);
      await Promise.all(resources.splice(0).map((r) => r.close()));
      await Promise.all(children.splice(0).map((c) => c.stop()));
    },
  };
}

/**
 * A {@linkcode cleanup} run after each test of the file that calls it (at its top level).
 *
 * @example
 * const resources = useCleanup();
 * test("...", async () => void resources.add(await serveEcho({ port: 0 })));
 */
export function useCleanup(): Cleanup {
  const resources = cleanup();
  afterEach(() => resources.run());
  return resources;
}

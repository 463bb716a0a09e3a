/**
 * `echogate demo`: the socket tutorial's scenarios run end to end in one process, server and
 * client side by side on loopback, each socket step narrated from the trace (src/trace/), in
 * English or the tutorial's Chinese.
 *
 * - scenarios.ts: the gate (right token, wrong token, timeout), echo, and recv's point.
 * - narrator.ts: the lines, 80 columns at most; text.ts and vocabulary_zh.ts: the words;
 *   runtime_notes.ts: what each runtime's API does at each step.
 * - receive_buffer.ts: the tutorial's `recv(1024)` over a chunked socket.
 *
 * @example Run every scenario in Chinese
 * ```ts ignore
 * import { runDemo } from "./mod.ts";
 * import { transport } from "../../adapters/deno.ts";
 *
 * await runDemo({ transport, language: "zh", write: (line) => console.log(line) });
 * ```
 *
 * @module
 */

import type { Transport } from "../types.ts";
import { Narrator } from "./narrator.ts";
import { echoScenario, gateScenario, recvScenario, type ScenarioContext } from "./scenarios.ts";
import { type DemoLanguage, fill } from "./text.ts";

export { DEMO_LANGUAGES, type DemoLanguage } from "./text.ts";
export { DEMO_WIDTH } from "./narrator.ts";

/**
 * The scenarios, in the order `all` runs them (the tutorial's): the gate, echo, then recv.
 *
 * @example
 * ```ts
 * import { DEMO_SCENARIOS } from "./mod.ts";
 *
 * console.log(DEMO_SCENARIOS.join("|")); // "gate|echo|recv"
 * ```
 */
export const DEMO_SCENARIOS = ["gate", "echo", "recv"] as const;

/** One of the demo's scenarios. */
export type DemoScenario = typeof DEMO_SCENARIOS[number];

/**
 * How long the demo's gate waits for a token, in ms: the tutorial's 5 s shortened, so the
 * client that waits too long costs one second; the demo says so.
 *
 * @example
 * ```ts
 * import { DEMO_GATE_TIMEOUT_MS } from "./mod.ts";
 *
 * console.log(DEMO_GATE_TIMEOUT_MS); // 1000
 * ```
 */
export const DEMO_GATE_TIMEOUT_MS = 1000;

/** Options for {@linkcode runDemo}. */
export interface DemoOptions {
  /** The runtime's transport. */
  transport: Transport;
  /** Writes one line of the narration (without its newline). */
  write(line: string): void;
  /** Which scenarios to run, in this order. @default {DEMO_SCENARIOS} */
  scenarios?: readonly DemoScenario[];
  /** English, or the tutorial's Chinese. @default {"en"} */
  language?: DemoLanguage;
  /** Add, under the first trace line of each step, what each runtime's API does there. @default {false} */
  runtimeNotes?: boolean;
  /** Colour the trace's step labels (only for a terminal, never with NO_COLOR). @default {false} */
  color?: boolean;
}

const RUN: Readonly<Record<DemoScenario, (context: ScenarioContext) => Promise<void>>> = {
  gate: gateScenario,
  echo: echoScenario,
  recv: recvScenario,
};

/**
 * Runs the tutorial's scenarios on loopback (a free port each), narrating every step, and
 * resolves when all are done and every socket is closed. Writes no files.
 *
 * @param options The transport, where lines go, which scenarios, the language.
 *
 * @example
 * ```ts ignore
 * import { runDemo } from "./mod.ts";
 * import { transport } from "../../adapters/node.ts";
 *
 * const lines: string[] = [];
 * await runDemo({ transport, scenarios: ["echo"], write: (line) => lines.push(line) });
 * console.log(lines.some((line) => line.includes("Client received: 'Echo=>Hello network world'"))); // true
 * ```
 */
export async function runDemo(options: DemoOptions): Promise<void> {
  const narrator = new Narrator({
    write: options.write,
    language: options.language,
    runtimeNotes: options.runtimeNotes,
    color: options.color,
  });
  narrator.paragraph(fill(narrator.text.header, { runtime: options.transport.runtime }));
  narrator.paragraph(narrator.text.legend);
  const context: ScenarioContext = { transport: options.transport, narrator, gateTimeoutMs: DEMO_GATE_TIMEOUT_MS };
  for (const scenario of options.scenarios ?? DEMO_SCENARIOS) await RUN[scenario](context);
  options.write("");
  narrator.paragraph(narrator.text.done);
}

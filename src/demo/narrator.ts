// How `echogate demo` writes: headings, wrapped paragraphs, each side's trace lines and what
// each side prints, and (with --runtime-notes) a note under the first line of each step.

import { createTracer, renderTraceLine, TRACE_VOCABULARY_EN, type Tracer, type TraceRecord } from "../trace/mod.ts";
import { columns } from "../trace/width.ts";
import { runtimeNote } from "./runtime_notes.ts";
import { type DemoLanguage, type DemoText, demoText } from "./text.ts";
import { TRACE_VOCABULARY_ZH } from "./vocabulary_zh.ts";
import { wrap } from "./wrap.ts";

/** The columns every line of the demo fits in. */
export const DEMO_WIDTH = 80;

/** The two sides of a scenario. */
export type Side = "server" | "client";

/** Options for {@linkcode Narrator}. */
export interface NarratorOptions {
  /** Writes one line. */
  write(line: string): void;
  /** The language. @default {"en"} */
  language?: DemoLanguage;
  /** Add how each runtime's API does a step, under its first trace line. @default {false} */
  runtimeNotes?: boolean;
  /** Colour the trace's step labels. @default {false} */
  color?: boolean;
}

/**
 * Writes the demo's lines, each at most {@linkcode DEMO_WIDTH} columns (wide characters count 2).
 *
 * @example
 * ```ts
 * import { Narrator } from "./narrator.ts";
 *
 * const narrator = new Narrator({ write: (line) => console.log(line), language: "zh" });
 * narrator.prints("client", "welcome to server!"); // "客户端 打印: welcome to server!"
 * ```
 */
export class Narrator {
  /** The narration's texts. */
  readonly text: DemoText;
  readonly #options: NarratorOptions;
  readonly #noted = new Set<string>();

  /** Creates a narrator writing through `options.write`. */
  constructor(options: NarratorOptions) {
    this.#options = options;
    this.text = demoText(options.language ?? "en");
  }

  /** A scenario's title, after a blank line. */
  heading(title: string): void {
    this.#options.write("");
    this.paragraph(`== ${title} ==`);
  }

  /** A part of a scenario's title, after a blank line. */
  subheading(title: string): void {
    this.#options.write("");
    this.paragraph(`-- ${title} --`);
  }

  /** Text wrapped to the width: its first line led by `indent`, the others by `hanging`. */
  paragraph(text: string, indent = "", hanging = indent): void {
    for (const line of wrap(indent + text, DEMO_WIDTH, hanging)) this.#options.write(line);
  }

  /**
   * A tracer for each side of a scenario, on one clock: each renders its steps as trace lines
   * led by its side's name.
   */
  tracers(): Record<Side, Tracer> {
    const started = performance.now();
    const now = () => performance.now() - started;
    return {
      server: createTracer((record) => this.#traceLine("server", record), { now }),
      client: createTracer((record) => this.#traceLine("client", record), { now }),
    };
  }

  /** What `side` prints on its standard output, as the tutorial's program would. */
  prints(side: Side, line: string): void {
    this.paragraph(`${this.#name(side)} ${this.text.prints}: ${line}`, "", "    ");
  }

  #name(side: Side): string {
    return side === "server" ? this.text.server : this.text.client;
  }

  // The side's name, then the trace's line. A line too wide for the demo is cut by the renderer,
  // except that "(one call: …)", the point of a listen or connect line, goes on a line of its own.
  #traceLine(side: Side, record: TraceRecord): void {
    const lead = `${this.#name(side)} `;
    const room = DEMO_WIDTH - columns(lead);
    const vocabulary = this.#options.language === "zh" ? TRACE_VOCABULARY_ZH : TRACE_VOCABULARY_EN;
    const render = (width: number) => renderTraceLine(record, { vocabulary, color: this.#options.color, width });
    const whole = render(Infinity);
    const cut = whole.lastIndexOf(" (");
    if (visibleColumns(whole) <= room) {
      this.#options.write(lead + whole);
    } else if ("together" in record && record.together && cut > 0 && visibleColumns(whole.slice(0, cut)) <= room) {
      this.#options.write(lead + whole.slice(0, cut));
      this.#options.write(" ".repeat(columns(lead) + LABEL_COLUMN) + whole.slice(cut + 1));
    } else {
      this.#options.write(lead + render(room));
    }
    if (this.#options.runtimeNotes && !this.#noted.has(record.step)) {
      this.#noted.add(record.step);
      const note = runtimeNote(record.step, this.#options.language ?? "en");
      if (note.length === 0) return;
      this.paragraph(this.text.noteLead, "    ");
      for (const line of note) this.paragraph(line, "      ", "        ");
    }
  }
}

/** Where a trace line's step label begins: after `    15.9 ms #1  `. */
const LABEL_COLUMN = 16;

function visibleColumns(line: string): number {
  // deno-lint-ignore no-control-regex
  return columns(line.replace(/\x1b\[[0-9;]*m/g, ""));
}

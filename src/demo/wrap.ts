// Wrapping narration to a terminal's width, East Asian wide characters counted as two columns.

import { columns } from "../trace/width.ts";

/**
 * Breaks `text` into lines of at most `width` columns (wide characters count 2), each after
 * the first starting with `indent`: at plain spaces (not no-break ones), or before and after any wide character (Chinese
 * has no spaces to break at). A word longer than a line stays whole.
 *
 * @param text One paragraph.
 * @param width The columns a line may take.
 * @param indent What lines after the first begin with.
 * @returns The lines.
 *
 * @example
 * ```ts
 * import { wrap } from "./wrap.ts";
 *
 * console.log(wrap("one two three", 8)); // ["one two", "three"]
 * ```
 */
export function wrap(text: string, width: number, indent = ""): string[] {
  const lead = /^ */.exec(text)![0];
  // Only a plain space breaks: "1\u00a0s" stays on one line.
  const pieces = text.match(/[^ \u2e80-\uffe6]+ *|[\u2e80-\uffe6] */g) ?? [];
  const lines: string[] = [];
  let line = lead;
  for (const piece of pieces) {
    const candidate = line + piece;
    if (line.trim() !== "" && columns(candidate.trimEnd()) > width) {
      lines.push(line.trimEnd());
      line = indent + piece;
    } else {
      line = candidate;
    }
  }
  if (line.trim() !== "") lines.push(line.trimEnd());
  return lines;
}

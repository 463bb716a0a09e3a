/**
 * One trace step as one line of at most 80 columns, escaped, coloured on request.
 *
 * @module
 */

import { escapeLogText } from "../_log_escape.ts";
import type { TraceRecord, TraceStep } from "./events.ts";
import { TRACE_VOCABULARY_EN, type TraceVocabulary } from "./vocabulary.ts";
import { columns, fitColumns } from "./width.ts";

/** Options for {@linkcode renderTraceLine}. */
export interface RenderTraceOptions {
  /** The words (see {@linkcode TraceVocabulary}). @default {TRACE_VOCABULARY_EN} */
  vocabulary?: TraceVocabulary;
  /**
   * Colour the step labels with ANSI escapes. The caller decides: only when the line goes to a
   * terminal and NO_COLOR is not set. @default {false}
   */
  color?: boolean;
  /** The columns a line may take (escape sequences not counted). @default {80} */
  width?: number;
}

// SGR colours by kind of step: setting up, connecting, reading, writing, ending, failing.
const COLOURS: Readonly<Record<TraceStep, string>> = {
  socket: "34",
  bind: "34",
  listen: "34",
  accept: "32",
  connect: "32",
  tls: "32",
  proxy: "32",
  recv: "36",
  recvfrom: "36",
  send: "33",
  sendto: "33",
  shutdown: "35",
  close: "35",
  timeout: "31",
};

const LABEL_COLUMNS = 9;

/**
 * Renders one step as one line (no newline): the ms since the trace started, the connection
 * number, the step and its details, e.g. `    15.9 ms #1  recv      5 B "hello"`. Every byte a
 * peer chose is escaped (src/_log_escape.ts), binary data shows as hex, and the line is cut to
 * `width` columns (wide characters count 2) with `…`.
 *
 * @param record The stamped step.
 * @param options The vocabulary, colour, and width.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { renderTraceLine } from "./mod.ts";
 *
 * const line = renderTraceLine({ step: "accept", conn: 1, ms: 3.25, peer: "127.0.0.1:40000" });
 * console.log(line); // "     3.3 ms #1  accept    from 127.0.0.1:40000"
 * ```
 */
export function renderTraceLine(record: TraceRecord, options: RenderTraceOptions = {}): string {
  const words = options.vocabulary ?? TRACE_VOCABULARY_EN;
  const width = options.width ?? 80;
  const head = `${record.ms.toFixed(1).padStart(8)} ms #${String(record.conn).padEnd(2)}`;
  const together = "together" in record && record.together && record.together.length > 0 ? record.together : [];
  const label = escapeLogText([...together, record.step].map((step) => words.steps[step]).join(words.joiner));
  const labelText = label + " ".repeat(Math.max(1, LABEL_COLUMNS - columns(label)));
  const room = width - columns(head) - 1 - columns(labelText);
  // Where one call did several steps, the label says so; the details add "(one call: its name)",
  // or "(one call)", or nothing, as the line has room (an address is worth more than the note).
  let detail = escapeLogText(details(record, words, 2));
  if (together.length > 0 && columns(detail) > room) detail = escapeLogText(details(record, words, 1));
  if (together.length > 0 && columns(detail) > room) detail = escapeLogText(details(record, words, 0));
  const rest = room > 0 ? fitColumns(detail, room) : "";
  if (!options.color) return `${head} ${labelText}${rest}`.trimEnd();
  return `\x1b[2m${head}\x1b[0m \x1b[${COLOURS[record.step]}m${label}\x1b[0m${labelText.slice(label.length)}${rest}`
    .trimEnd();
}

// `note`: 2 for "(one call: api)", 1 for "(one call)", 0 for none.
function details(record: TraceRecord, words: TraceVocabulary, note: 0 | 1 | 2): string {
  switch (record.step) {
    case "socket":
    case "shutdown":
    case "close":
      return "";
    case "bind":
      return `${record.address}${oneCall(record, words, note)}`;
    case "listen":
      return `${record.address}${record.backlog === undefined ? "" : ` ${words.backlog} ${record.backlog}`}${
        oneCall(record, words, note)
      }`;
    case "accept":
      return `${words.from} ${record.peer}`;
    case "connect":
      return `${words.to} ${record.peer}${oneCall(record, words, note)}`;
    case "recv":
      if (record.hidden) return `${words.bytes(record.bytes)} ${words.hidden}`;
      return record.bytes === 0 ? `${words.bytes(0)} (${words.eof})` : data(record.bytes, record.preview, words);
    case "send":
      if (record.hidden) return `${words.bytes(record.bytes)} ${words.hidden}`;
      return data(record.bytes, record.preview, words);
    case "recvfrom":
      return `${words.from} ${record.peer} ${data(record.bytes, record.preview, words)}`;
    case "sendto":
      return `${words.to} ${record.peer} ${data(record.bytes, record.preview, words)}`;
    case "timeout":
      return words.timeout(record.afterMs);
    case "tls":
      return [record.version, record.cipher === undefined ? undefined : `${words.cipher} ${record.cipher}`]
        .filter((part) => part !== undefined).join(" ");
    case "proxy":
      return `${words.client} ${record.client}`;
  }
}

function oneCall(
  record: { together?: readonly TraceStep[]; api?: string },
  words: TraceVocabulary,
  note: 0 | 1 | 2,
): string {
  if (note === 0 || !record.together || record.together.length === 0) return "";
  return ` (${words.oneCall(note === 2 ? record.api : undefined)})`;
}

function data(bytes: number, preview: Uint8Array, words: TraceVocabulary): string {
  const more = bytes > preview.length ? "…" : "";
  return `${words.bytes(bytes)} ${previewText(preview, words)}${more}`;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

// The length of `bytes` without a UTF-8 sequence cut off at its end.
function wholeCharacters(bytes: Uint8Array): number {
  for (let back = 1; back <= 3 && back <= bytes.length; back++) {
    const byte = bytes[bytes.length - back]!;
    if (byte < 0x80) return bytes.length; // ASCII: nothing cut
    if (byte >= 0xc0) {
      // A lead byte: the sequence it starts needs 2, 3 or 4 bytes.
      const needs = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return needs > back ? bytes.length - back : bytes.length;
    }
  }
  return bytes.length;
}

// Text as a quoted string (escaped by the caller), anything else (bytes that are not UTF-8, or
// controls beyond tab and line ends) as hex.
function previewText(preview: Uint8Array, words: TraceVocabulary): string {
  let text: string | undefined;
  try {
    // A preview cut in the middle of a character is still text: decoded up to that character.
    text = UTF8.decode(preview.subarray(0, wholeCharacters(preview)));
  } catch {
    text = undefined;
  }
  // deno-lint-ignore no-control-regex
  if (text !== undefined && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) return `"${text}"`;
  let hex = "";
  for (const byte of preview) hex += (hex === "" ? "" : " ") + byte.toString(16).padStart(2, "0");
  return `${words.hex} ${hex}`;
}

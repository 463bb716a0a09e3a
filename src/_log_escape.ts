// Escaping for log lines. Private: not re-exported.
//
// A log line carries text a peer chose (the TLS server name, a client certificate's subject, a
// byte of a refused PROXY header). Written raw, a newline in it forges a whole log line, ESC
// reaches the reader's terminal, and U+2028/U+2029 end a line for JavaScript readers of a JSON
// log. Human lines escape every such character as nginx does (`\xHH`); JSON lines escape those
// JSON.stringify leaves raw.

// C0 controls, DEL, C1 controls, the backslash (so an escape in the log is always ours), the
// bidirectional overrides and isolates (they reorder what a terminal shows), U+2028/U+2029, and
// UTF-16 surrogates without their pair (text that was not valid Unicode).
const HUMAN_UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u005c\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

// What JSON.stringify leaves raw that a line-oriented or JavaScript reader may take for a line
// end, or a terminal for a control: DEL, C1 controls, U+2028/U+2029, the bidirectional controls.
// (It escapes C0 controls and unpaired surrogates itself.)
const JSON_UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

function hex(code: number, digits: number): string {
  return code.toString(16).toUpperCase().padStart(digits, "0");
}

/**
 * Escapes the characters of `text` that could forge a log line or reach a terminal: controls
 * (C0, DEL, C1), the backslash, bidirectional controls, U+2028/U+2029 and unpaired surrogates.
 * Those up to U+00FF become `\xHH` (as nginx writes them), the others `\uHHHH`.
 *
 * @param text A human log line.
 * @returns The line, safe to print as one line.
 *
 * @example
 * ```ts
 * import { escapeLogText } from "./_log_escape.ts";
 *
 * console.log(escapeLogText("SNI x\nServer connected by 6.6.6.6:1337")); // "SNI x\x0AServer connected by 6.6.6.6:1337"
 * ```
 */
export function escapeLogText(text: string): string {
  // Most lines are printable ASCII without a backslash: one pass over the codes, no regex.
  if (isPlainAscii(text)) return text;
  return text.replace(HUMAN_UNSAFE, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`;
  });
}

/** Whether every character of `text` is printable ASCII (U+0020 to U+007E) other than the backslash. */
function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code > 0x7e || code === 0x5c) return false;
  }
  return true;
}

/**
 * Escapes, in a line JSON.stringify made, the characters it leaves raw that a reader may take for
 * a line end or a terminal for a control: DEL, C1 controls, U+2028/U+2029 and the bidirectional
 * controls, as `\uHHHH` (still the same JSON value).
 *
 * @param json A line of JSON.
 * @returns The same JSON, in printable ASCII where the input had those characters.
 *
 * @example
 * ```ts
 * import { escapeJsonLine } from "./_log_escape.ts";
 *
 * console.log(escapeJsonLine(JSON.stringify({ sni: "a\u2028b" }))); // {"sni":"a\u2028b"}
 * ```
 */
export function escapeJsonLine(json: string): string {
  return json.replace(JSON_UNSAFE, (char) => `\\u${hex(char.charCodeAt(0), 4)}`);
}

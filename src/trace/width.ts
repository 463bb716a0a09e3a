/**
 * Terminal columns of text: East Asian wide and fullwidth characters take two.
 *
 * @module
 */

// Code point ranges a terminal shows two columns wide (East Asian Width W and F, and the emoji
// blocks terminals draw wide), sorted: [first, last] pairs.
// deno-fmt-ignore
const WIDE: readonly number[] = [
  0x1100, 0x115f, 0x231a, 0x231b, 0x2329, 0x232a, 0x23e9, 0x23ec, 0x23f0, 0x23f0, 0x23f3, 0x23f3, 0x25fd,
  0x25fe, 0x2614, 0x2615, 0x2648, 0x2653, 0x267f, 0x267f, 0x2693, 0x2693, 0x26a1, 0x26a1, 0x26aa, 0x26ab,
  0x26bd, 0x26be, 0x26c4, 0x26c5, 0x26ce, 0x26ce, 0x26d4, 0x26d4, 0x26ea, 0x26ea, 0x26f2, 0x26f3, 0x26f5,
  0x26f5, 0x26fa, 0x26fa, 0x26fd, 0x26fd, 0x2705, 0x2705, 0x270a, 0x270b, 0x2728, 0x2728, 0x274c, 0x274c,
  0x274e, 0x274e, 0x2753, 0x2755, 0x2757, 0x2757, 0x2795, 0x2797, 0x27b0, 0x27b0, 0x27bf, 0x27bf, 0x2b1b,
  0x2b1c, 0x2b50, 0x2b50, 0x2b55, 0x2b55, 0x2e80, 0x303e, 0x3041, 0x33ff, 0x3400, 0x4dbf, 0x4e00, 0x9fff,
  0xa000, 0xa4cf, 0xa960, 0xa97f, 0xac00, 0xd7a3, 0xf900, 0xfaff, 0xfe10, 0xfe19, 0xfe30, 0xfe6f, 0xff00,
  0xff60, 0xffe0, 0xffe6, 0x16fe0, 0x18cff, 0x1b000, 0x1b2ff, 0x1f004, 0x1f004, 0x1f0cf, 0x1f0cf, 0x1f18e,
  0x1f18e, 0x1f191, 0x1f19a, 0x1f200, 0x1f2ff, 0x1f300, 0x1f64f, 0x1f680, 0x1f6ff, 0x1f7e0, 0x1f7eb, 0x1f90c,
  0x1f9ff, 0x1fa70, 0x1faff, 0x20000, 0x3fffd,
];

// Most trace lines: one column per character, counted by length.
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * The columns one code point takes: 2 for East Asian wide and fullwidth characters, 0 for
 * combining marks and zero-width characters, else 1.
 *
 * @param code A code point.
 * @returns 0, 1 or 2.
 *
 * @example
 * ```ts
 * import { codePointColumns } from "./width.ts";
 *
 * console.log(codePointColumns("接".codePointAt(0)!)); // 2
 * ```
 */
export function codePointColumns(code: number): number {
  if (code < 0x300) return 1;
  if ((code >= 0x300 && code <= 0x36f) || code === 0x200b || code === 0x200d || (code >= 0xfe00 && code <= 0xfe0f)) {
    return 0;
  }
  if (code < WIDE[0]!) return 1;
  for (let i = 0; i < WIDE.length; i += 2) {
    if (code < WIDE[i]!) return 1;
    if (code <= WIDE[i + 1]!) return 2;
  }
  return 1;
}

/**
 * The terminal columns `text` takes (without escape sequences: count before colouring).
 *
 * @param text Printable text.
 * @returns Its width in columns.
 *
 * @example
 * ```ts
 * import { columns } from "./mod.ts";
 *
 * console.log(columns("接收 5 B")); // 8
 * ```
 */
export function columns(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length;
  let width = 0;
  for (const char of text) width += codePointColumns(char.codePointAt(0)!);
  return width;
}

/**
 * Cuts `text` to at most `max` columns, ending it with `…` when anything was cut.
 *
 * @param text Printable text.
 * @param max The columns it may take.
 * @returns `text`, or its head and `…` within `max` columns.
 *
 * @example
 * ```ts
 * import { fitColumns } from "./mod.ts";
 *
 * console.log(fitColumns("接收接收", 5)); // "接收…"
 * ```
 */
export function fitColumns(text: string, max: number): string {
  if (PRINTABLE_ASCII.test(text)) return text.length <= max ? text : text.slice(0, Math.max(0, max - 1)) + "…";
  if (columns(text) <= max) return text;
  let width = 0;
  let out = "";
  for (const char of text) {
    const w = codePointColumns(char.codePointAt(0)!);
    if (width + w > max - 1) break;
    width += w;
    out += char;
  }
  return out + "…";
}

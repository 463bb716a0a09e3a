// The results as a table (text and Markdown), each cell's goal, and the statistics behind them.

import { execFileSync } from "node:child_process";
import process from "node:process";
import { BUN, DENO } from "./options.mjs";

export function format(value, unit) {
  if (!Number.isFinite(value)) return "n/a";
  const digits = unit === "KiB/conn" ? 2 : value >= 100 ? 0 : 1;
  return `${value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })} ${unit}`;
}
export const fixed = (value) => (Number.isFinite(value) ? value.toFixed(3) : "n/a");
export const delta = (kib) => (Number.isFinite(kib) ? `${kib >= 0 ? "+" : "−"}${Math.abs(kib).toFixed(2)} KiB` : "n/a");
export const percent = (value) => (Number.isFinite(value) ? `${Math.round(value * 100)}%` : "n/a");

export function goal(cell) {
  switch (cell.scenario) {
    case "stream":
    case "pingpong":
    case "connect-proxy":
    case "connect-proxy-cpu":
    case "tls-stream":
    case "tls-pingpong":
    case "tls-stream-close":
    case "tls-pingpong-close":
    case "tls-stream-close-nodetls":
    case "tls-pingpong-close-nodetls":
    case "udp":
      return cell.ratio >= 0.95 ? "met (≥ 0.95)" : "missed (≥ 0.95)";
    case "idle":
      if (cell.runtime === "deno") return cell.echogate <= 8 ? "met (≤ 8 KiB)" : "missed (≤ 8 KiB)";
      return cell.echogate <= cell.baseline + 1 ? "met (≤ base + 1 KiB)" : "missed (≤ base + 1 KiB)";
    default:
      return "—";
  }
}

export function table(cells) {
  const header = ["runtime", "scenario", "baseline", "echogate", "ratio", "A/A", "cpu ratio", "gen CPU", "goal"];
  const rows = cells.map((cell) => [
    cell.runtime,
    cell.scenario,
    format(cell.baseline, cell.unit),
    format(cell.echogate, cell.unit),
    (cell.scenario === "idle" ? delta(cell.ratio) : fixed(cell.ratio)) + (cell.problems ? " (ERRORS)" : ""),
    cell.scenario === "idle" ? delta(cell.aaRatio) : fixed(cell.aaRatio),
    fixed(cell.cpuRatio),
    percent(cell.generatorCpuMax),
    goal(cell),
  ]);
  const throughput = cells.filter((c) => c.scenario !== "idle" && !c.cost);
  if (throughput.length === 0) return [header, ...rows];
  rows.push([
    "geomean",
    `${throughput.length} throughput cells`,
    "",
    "",
    fixed(geomean(throughput.map((c) => c.ratio))),
    fixed(geomean(throughput.map((c) => c.aaRatio))),
    fixed(geomean(throughput.map((c) => c.cpuRatio))),
    "",
    "",
  ]);
  return [header, ...rows];
}

export function renderText(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => String(row[i]).length)));
  return rows.map((row) => row.map((cell, i) => String(cell).padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

export function renderMarkdown(rows) {
  const line = (row) => `| ${row.join(" | ")} |`;
  return [line(rows[0]), line(rows[0].map(() => "---")), ...rows.slice(1).map(line)].join("\n");
}

export function versions() {
  const version = (command) => {
    try {
      return execFileSync(command[0], command.slice(1), { encoding: "utf8" }).split("\n")[0].trim();
    } catch {
      return "unknown";
    }
  };
  return { node: process.version, deno: version([DENO, "--version"]), bun: version([BUN, "--version"]) };
}

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function geomean(values) {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  return finite.length ? Math.exp(finite.reduce((sum, v) => sum + Math.log(v), 0) / finite.length) : NaN;
}

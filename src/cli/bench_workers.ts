// `echogate bench --workers N|auto`: the load split over N processes, their reports merged
// exactly (histograms merged bucket by bucket, counts and rates added).
//
// Each worker is this CLI again with the same arguments and ECHOGATE_BENCH_SHARE=k/N in its
// environment: it takes its share of --conns and --rate, runs, and writes its run (report and
// histograms) as one control line on standard output. The supervisor forwards SIGINT/SIGTERM
// as a "stop" line on each worker's standard input (a worker whose input ends stops too).

import type { BenchInterval } from "../bench/report.ts";
import { type DetailedRun, runBenchDetailed } from "../bench/run.ts";
import { mergeRuns, type RunData, runFromData, runToData } from "../bench/merge.ts";
import type { BenchOptions } from "../bench/options.ts";
import { errorMessage } from "../log.ts";
import type { CliHost } from "./host.ts";
import { CONTROL, lines } from "./workers.ts";

/** The environment variable that makes a bench process worker k of N: `k/N`. */
export const BENCH_SHARE_ENV = "ECHOGATE_BENCH_SHARE";

/** This process's share of a split bench, when it is a worker. */
export function benchShare(host: CliHost): { index: number; count: number } | undefined {
  const match = /^(\d+)\/(\d+)$/.exec(host.env(BENCH_SHARE_ENV) ?? "");
  if (!match) return undefined;
  const index = Number(match[1]);
  const count = Number(match[2]);
  return index >= 1 && index <= count ? { index, count } : undefined;
}

/** Worker `index` (from 1) of `count`'s part of `total` connections: the remainder goes to the first ones. */
export function shareOf(total: number, index: number, count: number): number {
  return Math.floor(total / count) + (index <= total % count ? 1 : 0);
}

type Control =
  | { t: "run"; run: RunData }
  | { t: "interval"; interval: BenchInterval }
  | { t: "stop" };

function send(write: (line: string) => void, message: Control): void {
  write(CONTROL + JSON.stringify(message));
}

function parse(line: string): Control | undefined {
  if (!line.startsWith(CONTROL)) return undefined;
  try {
    return JSON.parse(line.slice(CONTROL.length)) as Control;
  } catch {
    return undefined;
  }
}

/**
 * Runs a worker's share: `options` already hold its connections and rate. Its run goes to the
 * supervisor as a control line; exits 0 when it has a run to report.
 */
export async function runBenchWorker(host: CliHost, options: BenchOptions, stream: boolean): Promise<number> {
  const aborter = new AbortController();
  const stop = () => aborter.abort();
  host.onSignal("SIGINT", () => {}); // the supervisor forwards it
  host.onSignal("SIGTERM", stop);
  void (async () => {
    const input = host.readInput?.();
    if (!input) return;
    try {
      for await (const line of lines(input)) if (parse(line)?.t === "stop") stop();
    } catch {
      // A broken pipe reads as the end.
    }
    stop();
  })();
  const run = await runBenchDetailed({
    ...options,
    signal: aborter.signal,
    onInterval: stream ? (interval) => send(host.writeOut, { t: "interval", interval }) : undefined,
  });
  send(host.writeOut, { t: "run", run: runToData(run) });
  return 0;
}

/**
 * Starts `count` bench workers with this command line, forwards stop signals, and resolves
 * with their runs merged, or throws when a worker ended without a run (its error is on
 * standard error). `onInterval` gets each worker's intervals.
 */
export async function superviseBench(
  host: CliHost,
  count: number,
  onInterval?: (worker: number, interval: BenchInterval) => void,
): Promise<DetailedRun> {
  const spawner = host.workers!;
  const workers = Array.from(
    { length: count },
    (_, i) => spawner.spawn(host.args, { [BENCH_SHARE_ENV]: `${i + 1}/${count}` }),
  );
  let signals = 0;
  const stop = () => {
    if (++signals > 1) {
      for (const worker of workers) worker.kill("SIGKILL");
      return host.exit(130);
    }
    for (const worker of workers) worker.send(`${CONTROL}${JSON.stringify({ t: "stop" })}\n`);
  };
  host.onSignal("SIGINT", stop);
  host.onSignal("SIGTERM", stop);
  const runs = await Promise.all(workers.map(async (worker, i) => {
    let run: DetailedRun | undefined;
    try {
      for await (const line of lines(worker.output)) {
        const message = parse(line);
        if (message === undefined) host.writeOut(line);
        else if (message.t === "run") run = runFromData(message.run);
        else if (message.t === "interval") onInterval?.(i + 1, message.interval);
      }
    } catch (error) {
      host.writeErr(`echogate: bench worker ${i + 1}: ${errorMessage(error)}`);
    }
    const { code, signal } = await worker.exited;
    return { run, code, signal };
  }));
  const missing = runs.findIndex((result) => result.run === undefined);
  if (missing !== -1) {
    const { code, signal } = runs[missing]!;
    throw new Error(`bench worker ${missing + 1} ended without a report (${signal ?? `exit code ${code}`})`);
  }
  return mergeRuns(runs.map((result) => result.run!));
}

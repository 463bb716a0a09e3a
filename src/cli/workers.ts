/**
 * `--workers N|auto`: one supervisor process and N worker processes serving one port.
 *
 * The supervisor starts each worker as this CLI again (through the host's
 * {@linkcode WorkerSpawner}) with `ECHOGATE_WORKER=<n>` in its environment and passes the log
 * lines of the worker's standard output on. A worker's messages ("listening", the penalties it
 * gave) come over its IPC channel, never its standard output: a log line carries text a peer chose
 * (a TLS server name), which must not be able to pass for a message. The supervisor writes control
 * lines (marked with a leading U+001E) to the workers' standard input: penalties to apply, and
 * "stop". Both ends check every message they get. A worker whose standard input ends (its
 * supervisor died) stops too, so no worker outlives its supervisor.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { createLogger, type LogEvent, type Logger } from "../log.ts";
import type { PenaltyKind, PenaltyShare } from "../gate/penalties.ts";
import { addCounters, newServerCounters, type ProcessFacts, type ServerCounters } from "../metrics/mod.ts";
import type { EchogateServer } from "../server.ts";
import type { HttpServer } from "../types.ts";
import { parsePositiveInt } from "./args.ts";
import { DEFAULT_DRAIN_MS, drainingNotice, type Options, serverLogger, str } from "./command.ts";
import type { CliHost, WorkerProcess } from "./host.ts";
import { serveMetrics, sumFacts } from "./metrics_endpoint.ts";
import {
  checkWorkerMessage,
  CONTROL,
  type CountersMessage,
  decodeSupervisorLine,
  encode,
  MAX_REPLAY,
  type Penalty,
  REPLAY_MS,
  type SupervisorMessage,
} from "./worker_messages.ts";

export { CONTROL };

/** The environment variable that tells a process it is worker N of a supervisor. */
export const WORKER_ENV = "ECHOGATE_WORKER";

/** First pause before a dead worker is started again; it doubles up to MAX_RESTART_MS. */
const FIRST_RESTART_MS = 100;
const MAX_RESTART_MS = 10_000;
/** A worker that ran this long before dying starts again after FIRST_RESTART_MS. */
const STABLE_MS = 10_000;

/** Splits text arriving in pieces into lines (without their newline); the last unfinished line comes at the end. */
export async function* lines(pieces: AsyncIterable<string>): AsyncIterable<string> {
  let rest = "";
  for await (const piece of pieces) {
    rest += piece;
    let newline: number;
    while ((newline = rest.indexOf("\n")) !== -1) {
      yield rest.slice(0, newline);
      rest = rest.slice(newline + 1);
    }
  }
  if (rest !== "") yield rest;
}

/**
 * Reads `--workers`: a positive integer or `auto` (the cores available). Undefined when absent.
 * A unix socket has one listener, so `--unix` with `--workers` is refused.
 */
export function workersOption(host: CliHost, options: Options): number | undefined {
  const value = str(options, "workers");
  if (value === undefined) return undefined;
  if (str(options, "unix") !== undefined) {
    throw new UsageError(
      `"--workers" needs a TCP port: a unix socket takes one listener (drop "--unix" or "--workers")`,
    );
  }
  if (options.udp === true) {
    throw new UsageError(`"--workers" serves TCP: it does not apply with "--udp"`);
  }
  if (!host.workers) throw new UsageError(`"--workers" is not available on this runtime`);
  return value === "auto" ? Math.max(1, host.workers.cores()) : parsePositiveInt("workers", value);
}

/**
 * This process's worker number when a supervisor started it, else undefined.
 *
 * @example
 * ```ts ignore
 * if (workerNumber(host) !== undefined) console.log("running under a supervisor");
 * ```
 */
export function workerNumber(host: CliHost): number | undefined {
  const value = host.env(WORKER_ENV);
  if (value === undefined || !/^[1-9]\d*$/.test(value)) return undefined;
  return Number(value);
}

/**
 * A worker's side of the channel to its supervisor: the penalty share, and the run that
 * reports "listening" and stops on the supervisor's word (or when the supervisor is gone).
 */
export class WorkerChannel {
  /** This worker's number, from 1. */
  readonly number: number;
  readonly #host: CliHost;
  #apply: ((address: string, kind: PenaltyKind, at: number) => void) | undefined;
  #early: { address: string; kind: PenaltyKind; at: number }[] = [];
  #onStop: (() => void) | undefined;
  #stopAsked = false;
  #onReload: (() => void) | undefined;
  #reloadAsked = false;
  #markSynced!: () => void;
  #server: EchogateServer | undefined;
  /**
   * Settles once the penalties given before this worker started have arrived: a gate worker waits
   * for it before it listens, so a worker started again never admits a source the others refuse.
   */
  readonly synced: Promise<void> = new Promise((resolve) => (this.#markSynced = resolve));

  /**
   * @param host The CLI host (its standard input is the supervisor's channel).
   * @param number This worker's number.
   */
  constructor(host: CliHost, number: number) {
    this.#host = host;
    this.number = number;
    void this.#read();
  }

  /** Penalties given here go to the supervisor; those given by other workers come back here. */
  readonly share: PenaltyShare = {
    publish: (address, kind, at) => void this.#host.sendToSupervisor?.({ t: "penalty", address, kind, at }),
    subscribe: (apply) => {
      this.#apply = apply;
      for (const { address, kind, at } of this.#early.splice(0)) apply(address, kind, at);
    },
  };

  async #read(): Promise<void> {
    const input = this.#host.readInput?.();
    if (!input) return this.#markSynced();
    try {
      for await (const line of lines(input)) {
        const message = decodeSupervisorLine(line, Date.now());
        if (message?.t === "penalty") {
          if (this.#apply) this.#apply(message.address, message.kind, message.at);
          else if (this.#early.length < MAX_REPLAY) this.#early.push(message);
        } else if (message?.t === "synced") this.#markSynced();
        else if (message?.t === "stop") this.#stop();
        else if (message?.t === "counters") this.#sendCounters();
        else if (message?.t === "reload") {
          if (this.#onReload) this.#onReload();
          else this.#reloadAsked = true;
        }
      }
    } catch {
      // A broken pipe reads as the end.
    }
    this.#markSynced();
    this.#stop(); // the supervisor is gone: stop rather than outlive it
  }

  #sendCounters(): void {
    if (!this.#server) return;
    const process = this.#host.processFacts?.() ?? {};
    this.#host.sendToSupervisor?.({ t: "counters", counters: this.#server.counters(), process });
  }

  #stop(): void {
    this.#stopAsked = true;
    this.#onStop?.();
  }

  /**
   * What to run when the supervisor passes on a SIGHUP: re-read the TLS files. (A worker that
   * starts meanwhile reads the files as they are then, so it needs no message.)
   *
   * @example
   * ```ts ignore
   * channel.onReload(() => console.log("reloading"));
   * ```
   */
  onReload(reload: () => void): void {
    this.#onReload = reload;
    // Asked before this worker could: it may have read the files before they changed.
    if (this.#reloadAsked) reload();
    this.#reloadAsked = false;
  }

  /**
   * Tells the supervisor the server listens, then serves until told to stop: drains as
   * `untilSignal` does and resolves 0. SIGINT is left to the supervisor (a terminal sends it to
   * the whole process group); SIGTERM sent to this worker alone stops it too. Stopping twice exits at once.
   */
  run(server: EchogateServer, drainMs: number): Promise<number> {
    const host = this.#host;
    const port = server.addr.transport === "tcp" ? server.addr.port : undefined;
    host.sendToSupervisor?.({ t: "listening", address: server.url, port });
    this.#server = server;
    return new Promise((resolve) => {
      let stopping = false;
      const stop = () => {
        if (stopping) return host.exit(130);
        stopping = true;
        // The supervisor sums these into its one "draining" line.
        host.sendToSupervisor?.({ t: "draining", connections: server.connections });
        // Once closed, the final counters: the supervisor keeps them when this worker is gone.
        const closed = (code: number) => (this.#sendCounters(), resolve(code));
        server.close({ drainMs }).then(() => closed(0), () => closed(1));
      };
      host.onSignal("SIGINT", () => {});
      host.onSignal("SIGTERM", stop);
      this.#onStop = stop;
      if (this.#stopAsked) stop();
    });
  }
}

/** The worker number's part of the server's log: JSON events carry `worker`, lines start `[worker N]`. */
export function workerLogger(host: CliHost, options: Options, worker: number | undefined): Logger {
  const logger = serverLogger(host, options, worker);
  if (worker === undefined) return logger;
  // The supervisor prints "listening" once for all workers.
  return {
    log: (event) => event.event !== "listening" && logger.log(event),
    ...(logger.wants && { wants: (event: LogEvent["event"]) => logger.wants!(event) }),
  };
}

/** What {@linkcode supervise} runs. */
export interface SuperviseOptions {
  /** How many workers. */
  count: number;
  /** The protocol, for the one "listening" line. */
  protocol: "echo" | "gate";
  /** Log JSON events. */
  json: boolean;
  /** Pass SIGHUP on to every worker, which re-reads its TLS files (set when serving TLS). */
  reload?: boolean;
  /** The workers' --drain-timeout in ms, for the "draining" line. @default {DEFAULT_DRAIN_MS} */
  drainMs?: number;
  /** Added to every worker's environment (the --tls-self-signed certificate). */
  env?: Record<string, string>;
  /** Called with each penalty a worker gives (checked), once. */
  onPenalty?: (address: string, kind: PenaltyKind, at: number) => void;
  /** Serve the workers' summed metrics here (`--metrics`). */
  metrics?: { hostname: string; port: number };
  /** Where the metrics listener is announced. */
  onMetricsListening?: (address: string) => void;
}

interface Slot {
  number: number;
  process: WorkerProcess | undefined;
  startedAt: number;
  restartMs: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** What this worker (as started last) reported: its latest counters, and how many reports. */
  report: WorkerReport;
}

interface WorkerReport {
  counters: CountersMessage | undefined;
  replies: number;
}

/** How long an exited worker's report stays apart (its final one may come after its exit). */
const RETIRE_AFTER_MS = 5000;

/** An exited worker's counters: its gauges are no more. */
function gone(counters: ServerCounters): ServerCounters {
  return { ...counters, open: 0, penalizedSources: undefined };
}

/** How long a scrape waits for the workers' counters before it sums the latest it has. */
const SCRAPE_WAIT_MS = 2000;

/**
 * Runs the supervisor: starts the workers (the first alone, so `--port 0` is resolved before the
 * others bind), prints "listening" once, passes their log lines on and their penalties around,
 * starts a dead worker again after a pause that doubles (100 ms up to 10 s), and on SIGINT or
 * SIGTERM tells every worker to stop and resolves once all have exited (0 when all exited 0).
 * A second signal kills them all and exits 130.
 */
export async function supervise(host: CliHost, options: SuperviseOptions): Promise<number> {
  const spawner = host.workers!;
  const logger = createLogger({ json: options.json, writeOut: host.writeOut, writeErr: host.writeErr });
  const slots: Slot[] = Array.from(
    { length: options.count },
    (_, i) => ({
      number: i + 1,
      process: undefined,
      startedAt: 0,
      restartMs: FIRST_RESTART_MS,
      timer: undefined,
      report: { counters: undefined, replies: 0 },
    }),
  );
  let args = [...host.args];
  let stopping = false;
  let started = false;
  const listening = new Map<number, () => void>();
  let finished: ((code: number) => void) | undefined;
  const done = new Promise<number>((resolve) => (finished = resolve));
  const exitCodes: (number | null)[] = [];
  const given: Penalty[] = [];
  let firstAddress: string | undefined;
  let firstExit: Promise<{ code: number | null }> | undefined;
  // On the first signal: the workers yet to say how many connections they drain, and the sum.
  let drainPending: Set<number> | undefined;
  let draining = 0;
  let drainSignal: "SIGINT" | "SIGTERM" = "SIGTERM";
  const drained = (number: number, connections: number) => {
    if (!drainPending?.delete(number)) return;
    draining += connections;
    if (drainPending.size > 0) return;
    const notice = drainingNotice(draining, options.drainMs ?? DEFAULT_DRAIN_MS, drainSignal);
    if (notice !== undefined) host.writeErr(notice);
  };

  const live = () => slots.filter((slot) => slot.process !== undefined);
  const broadcast = (from: number, message: SupervisorMessage) => {
    const text = encode(message);
    for (const slot of live()) if (slot.number !== from) slot.process!.send(text);
  };
  const checkFinished = () => {
    if (stopping && live().length === 0 && slots.every((slot) => slot.timer === undefined)) {
      finished?.(exitCodes.every((code) => code === 0) ? 0 : 1);
    }
  };

  function start(slot: Slot): Promise<boolean> {
    const worker = spawner.spawn(args, { ...options.env, [WORKER_ENV]: String(slot.number) });
    // A worker started again learns the penalties given while it was away, oldest first.
    const since = Date.now() - REPLAY_MS;
    while (given.length > 0 && given[0]!.at < since) given.shift();
    worker.send([...given, { t: "synced" } as const].map(encode).join(""));
    if (slot.number === 1) firstExit = worker.exited;
    slot.process = worker;
    slot.startedAt = Date.now();
    const report: WorkerReport = slot.report = { counters: undefined, replies: 0 };
    let up = false;
    const ready = new Promise<boolean>((resolve) => {
      listening.set(slot.number, () => {
        up = true;
        resolve(true);
      });
      void worker.exited.then(() => resolve(false));
    });
    worker.onMessage((value) => {
      const message = checkWorkerMessage(value, Date.now());
      if (message?.t === "listening") {
        if (up) return; // said once per start
        if (slot.number === 1 && message.port !== undefined && !spawner.sharedSocket) {
          // The others bind the port the first one got (it matters for --port 0).
          args = [...host.args, "--port", String(message.port)];
        }
        listening.get(slot.number)?.();
        if (!started) firstAddress ??= message.address;
      } else if (message?.t === "penalty") {
        broadcast(slot.number, message);
        options.onPenalty?.(message.address, message.kind, message.at);
        given.push(message);
        if (given.length > MAX_REPLAY) given.splice(0, given.length - MAX_REPLAY);
      } else if (message?.t === "draining") drained(slot.number, message.connections);
      else if (message?.t === "counters") {
        report.counters = message;
        report.replies++;
        for (const waiter of scrapes) waiter();
      }
    });
    void (async () => {
      try {
        // Log lines only: the worker's messages take its IPC channel.
        for await (const line of lines(worker.output)) host.writeOut(line);
      } catch {
        // Its output broke: its exit is reported.
      }
    })();
    void worker.exited.then(({ code, signal }) => {
      slot.process = undefined;
      retire(report);
      for (const waiter of scrapes) waiter(); // a scrape need not wait for it
      listening.delete(slot.number);
      drained(slot.number, 0);
      if (stopping || !started) {
        exitCodes.push(code);
        checkFinished();
        return;
      }
      // Died while serving: start it again after a pause, longer each time it dies young.
      if (up && Date.now() - slot.startedAt >= STABLE_MS) slot.restartMs = FIRST_RESTART_MS;
      const pause = slot.restartMs;
      slot.restartMs = Math.min(slot.restartMs * 2, MAX_RESTART_MS);
      logger.log({ event: "worker-exit", worker: slot.number, code, signal, restartInMs: pause });
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        if (!stopping) void start(slot);
        else checkFinished();
      }, pause);
    });
    return ready;
  }

  // --metrics: each scrape asks every worker for its counters (exact at that moment) and sums
  // them with those of the workers that have exited (their last report, sent as they stop).
  // An exited worker's final report may come just after its exit: its report is summed from a
  // list for a while, then folded into one sum.
  const retired = newServerCounters();
  const exited = new Set<WorkerReport>();
  const scrapes = new Set<() => void>(); // scrapes waiting for the workers' answers
  function retire(report: WorkerReport): void {
    exited.add(report);
    setTimeout(() => {
      exited.delete(report);
      if (report.counters) addCounters(retired, gone(report.counters.counters));
    }, RETIRE_AFTER_MS);
  }
  async function collect(): Promise<{ counters: ServerCounters; process: ProcessFacts }> {
    const asked = live().map((slot) => ({ slot, report: slot.report, replies: slot.report.replies }));
    for (const { slot } of asked) slot.process!.send(encode({ t: "counters" }));
    // Answered, or gone (exited, or exited and started again) meanwhile.
    const all = () =>
      asked.every(({ slot, report, replies }) =>
        report.replies > replies || slot.report !== report || slot.process === undefined
      );
    let timer: ReturnType<typeof setTimeout> | undefined;
    let waiter!: () => void;
    await new Promise<void>((resolve) => {
      waiter = () => all() && resolve();
      scrapes.add(waiter);
      timer = setTimeout(resolve, SCRAPE_WAIT_MS);
      waiter();
    });
    clearTimeout(timer);
    scrapes.delete(waiter);
    const counters = addCounters(newServerCounters(), retired);
    for (const report of exited) if (report.counters) addCounters(counters, gone(report.counters.counters));
    const reports = live().map((slot) => slot.report.counters).filter((report) => report !== undefined);
    for (const report of reports) addCounters(counters, report.counters);
    // The workers share their penalties: each holds the same sources, so the gauge is the largest.
    const penalized = reports.map((report) => report.counters.penalizedSources ?? 0);
    if (counters.penalizedSources !== undefined) counters.penalizedSources = Math.max(0, ...penalized);
    return { counters, process: sumFacts([host.processFacts?.(), ...reports.map((report) => report.process)]) };
  }

  let signals = 0;
  const onSignal = (signal: "SIGINT" | "SIGTERM") => {
    if (++signals > 1) {
      for (const slot of live()) slot.process!.kill("SIGKILL");
      return host.exit(130);
    }
    stopping = true;
    drainSignal = signal;
    drainPending = new Set(live().map((slot) => slot.number));
    for (const slot of slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      slot.timer = undefined;
    }
    for (const slot of live()) slot.process!.send(encode({ t: "stop" }));
    checkFinished();
  };
  host.onSignal("SIGINT", () => onSignal("SIGINT"));
  host.onSignal("SIGTERM", () => onSignal("SIGTERM"));
  // Over the channel rather than as a signal: a worker still starting has no SIGHUP handler yet,
  // and SIGHUP would kill it; it reads the files as they are when it starts anyway.
  if (options.reload) host.onSignal("SIGHUP", () => !stopping && broadcast(0, { t: "reload" }));

  // The first worker alone: a bad flag, a port in use or a bad token file shows once, from it.
  const first = slots[0]!;
  if (!(await start(first))) {
    const { code } = await firstExit!;
    return stopping ? await done : code ?? 1;
  }
  const rest = await Promise.all(slots.slice(1).map((slot) => (stopping ? Promise.resolve(true) : start(slot))));
  if (!stopping && rest.includes(false)) {
    // A worker could not listen where the first one could: give up on all of them.
    stopping = true;
    for (const slot of live()) slot.process!.send(encode({ t: "stop" }));
    await done;
    return 1;
  }
  started = true;
  if (!stopping) {
    logger.log({ event: "listening", protocol: options.protocol, address: firstAddress ?? "", workers: options.count });
  }
  let metrics: HttpServer | undefined;
  if (options.metrics && !stopping) {
    try {
      metrics = await serveMetrics(host, options.metrics, collect, options.onMetricsListening ?? (() => {}));
    } catch (error) {
      onSignal("SIGTERM");
      await done;
      throw error;
    }
  }
  const code = await done;
  await metrics?.close();
  return code;
}

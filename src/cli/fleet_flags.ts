// `gate serve`'s penalty sizes (--penalties) and fleet-wide penalties: --haproxy-runtime and
// --haproxy-table (the reporter that tells HAProxy which sources to refuse; docs/fleet.md).

import { UsageError } from "../errors.ts";
import { HaproxyPenaltyReporter, isTableName, parseRuntimeApiTargets } from "../haproxy_runtime/mod.ts";
import type { Logger } from "../log.ts";
import { PenaltyBox, type PenaltyKind, type PenaltyOptions } from "../gate/penalties.ts";
import type { Options } from "./command.ts";
import { str } from "./command.ts";
import type { Flag } from "./flags.ts";
import type { CliHost } from "./host.ts";

/**
 * The flags.
 *
 * @example
 * ```ts ignore
 * defineCommand({ name: "gate serve", flags: [...FLEET_FLAGS], ... });
 * ```
 */
export const FLEET_FLAGS: readonly Flag[] = [
  {
    name: "penalties",
    value: "L",
    usage: "KIND:S,...",
    help: `Penalty sizes in seconds, as OpenSSH's PerSourcePenalties: authfail, grace-exceeded,
noauth, min (refused beyond it), max
(default authfail:5,grace-exceeded:10,noauth:1,min:15,max:600)`,
  },
  {
    name: "haproxy-runtime",
    value: "ADDR",
    usage: "ADDR,...",
    help: `Report refused sources to these HAProxy runtime APIs (unix:PATH or HOST:PORT,
stats socket level admin): data.gpc0 1 in --haproxy-table while refused,
0 after (docs/fleet.md)`,
  },
  { name: "haproxy-table", value: "NAME", help: "The stick table for --haproxy-runtime (type ip or ipv6, store gpc0)" },
];

/** Their usage line (`{name}` stands for a flag and its value). */
export const FLEET_USAGE = "[{penalties}] [{haproxy-runtime} {haproxy-table}]";

const PENALTY_NAMES: Record<string, keyof PenaltyOptions> = {
  authfail: "authfailSeconds",
  "grace-exceeded": "graceExceededSeconds",
  noauth: "noauthSeconds",
  min: "minSeconds",
  max: "maxSeconds",
};

/**
 * Reads --penalties into penalty options (empty without it).
 *
 * @example
 * ```ts ignore
 * penaltySizes({ penalties: "authfail:3,min:4" }); // { authfailSeconds: 3, minSeconds: 4 }
 * ```
 */
export function penaltySizes(options: Options): PenaltyOptions {
  const text = str(options, "penalties");
  if (text === undefined) return {};
  const sizes: Record<string, number> = {};
  for (const part of text.split(",")) {
    const match = /^([a-z-]+):(\d+(?:\.\d+)?)$/.exec(part.trim());
    const name = match && Object.hasOwn(PENALTY_NAMES, match[1]!) ? PENALTY_NAMES[match[1]!]! : undefined;
    const seconds = match ? Number(match[2]) : NaN;
    if (!name || !(seconds <= 86_400)) {
      throw new UsageError(
        `Invalid value for "--penalties": "${part}" is not KIND:SECONDS (authfail, grace-exceeded, noauth, min, max; at most 86400)`,
      );
    }
    sizes[name] = seconds;
  }
  if ((sizes.maxSeconds ?? 600) <= (sizes.minSeconds ?? 15)) {
    throw new UsageError(`Invalid value for "--penalties": max must be more than min, or nothing is ever refused`);
  }
  return sizes;
}

/**
 * The HAProxy runtime APIs and table to report to, checked; undefined without --haproxy-runtime.
 *
 * @example
 * ```ts ignore
 * haproxyReportSettings({ "haproxy-runtime": "unix:/run/h.sock", "haproxy-table": "penalised" }, true);
 * ```
 */
export function haproxyReportSettings(
  options: Options,
  penalties: boolean,
): { targets: ReturnType<typeof parseRuntimeApiTargets>; table: string } | undefined {
  const runtime = str(options, "haproxy-runtime");
  const table = str(options, "haproxy-table");
  if (runtime === undefined && table === undefined) return undefined;
  if (runtime === undefined || table === undefined) {
    throw new UsageError(`"--haproxy-runtime" and "--haproxy-table" go together`);
  }
  if (!penalties) {
    throw new UsageError(`"--haproxy-runtime" reports penalties: it does not apply with "--no-penalties"`);
  }
  if (!isTableName(table)) {
    throw new UsageError(`Invalid value for "--haproxy-table": "${table}" is not letters, digits, ".", "_" and "-"`);
  }
  return { targets: parseRuntimeApiTargets(runtime), table };
}

/**
 * The reporter for these settings, logging to `logger`.
 *
 * @example
 * ```ts ignore
 * const reporter = startHaproxyReporter(host, settings, server.logger);
 * ```
 */
export function startHaproxyReporter(
  host: CliHost,
  settings: NonNullable<ReturnType<typeof haproxyReportSettings>>,
  logger: Logger,
): HaproxyPenaltyReporter {
  return new HaproxyPenaltyReporter({ transport: host.transport, ...settings, logger });
}

/**
 * With --workers: the supervisor's own penalty table, fed each penalty a worker gives, tells the
 * reporter when a source starts being refused (once per source, whichever worker saw it).
 * Returns what the supervisor calls with each penalty.
 *
 * @example
 * ```ts ignore
 * await server.run("gate", listen, { onPenalty: workerPenaltyReports(penalties, reporter) });
 * ```
 */
export function workerPenaltyReports(
  penalties: PenaltyOptions,
  reporter: HaproxyPenaltyReporter,
): (address: string, kind: PenaltyKind, at: number) => void {
  let apply: ((address: string, kind: PenaltyKind, at: number) => void) | undefined;
  new PenaltyBox({
    ...penalties,
    onRefusing: reporter.refusing,
    share: { publish: () => {}, subscribe: (given) => void (apply = given) },
  });
  return (address, kind, at) => apply?.(address, kind, at);
}

// Parsing Linux's /proc/self/limits, shared by the adapters that read it with their own file API.

/** The soft "Max open files" limit in a /proc/self/limits text, or `undefined` if unlimited or absent. */
export function softOpenFilesLimit(limits: string): number | undefined {
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
  return soft === undefined || soft === "unlimited" ? undefined : Number(soft);
}

/**
 * User plus system CPU seconds in a /proc/self/stat text (fields 14 and 15, in clock ticks of
 * 1/100 s: USER_HZ is 100 on every Linux architecture), or `undefined` if it does not parse.
 */
export function cpuSecondsFromStat(stat: string): number | undefined {
  // The command name (field 2) may hold spaces and parentheses: count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / 100 : undefined;
}

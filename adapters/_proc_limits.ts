// Parsing Linux's /proc/self/limits, shared by the adapters that read it with their own file API.

/** The soft "Max open files" limit in a /proc/self/limits text, or `undefined` if unlimited or absent. */
export function softOpenFilesLimit(limits: string): number | undefined {
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
  return soft === undefined || soft === "unlimited" ? undefined : Number(soft);
}

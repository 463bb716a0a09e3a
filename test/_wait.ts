// Waiting in tests: for a promise with a deadline, or for a condition by polling.

/** Resolves with `promise`, or rejects with `what` after `ms`. */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `check` every 20 ms until it returns a value other than undefined, or fails after `ms`. */
export async function waitFor<T>(check: () => T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  while (true) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Polls `predicate` (which may be async) every `intervalMs` until it holds; fails after `timeoutMs`,
 * naming `what`. The predicate is asked once more after the deadline, so a loaded machine that wakes
 * late still sees the state it was waiting for.
 *
 * @example
 * await waitUntil(() => child.stdout().includes("listening"), { what: "the listening line" });
 */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  const { timeoutMs = 5000, intervalMs = 20, what = "a condition" } = options;
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Waits until `progress` (a count that only grows) has not moved for `quietMs`: it is sampled every
 * 20 ms, and it must read the same at every sample over at least `quietMs`. So a stall means no
 * progress for that long, not merely between two samples.
 *
 * @example
 * await waitForStall(() => written, 500, { timeoutMs: 60_000, what: "the writer to stall" });
 */
export async function waitForStall(
  progress: () => number,
  quietMs: number,
  options: { timeoutMs?: number; what?: string } = {},
): Promise<void> {
  let value = progress();
  let since = Date.now();
  await waitUntil(() => {
    const now = progress();
    if (now !== value) [value, since] = [now, Date.now()];
    return Date.now() - since >= quietMs;
  }, options);
}

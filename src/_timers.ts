// Timer helpers for the core. Timeouts live here, not in runtime socket options
// (Bun's socket timeouts are coarse, and each runtime's differ).

/** Marker value a timed read resolves with when its deadline passes first. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/** Resolves with `promise`'s value, or {@linkcode TIMED_OUT} after `ms`; the timer is always cleared. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  if (!Number.isFinite(ms)) return promise;
  // One promise and one timer (not Promise.race over a timeout promise): every connection's
  // token wait and close sequence runs through here.
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms, TIMED_OUT);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

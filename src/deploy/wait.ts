// Waiting on the controller (for a host's lock): an interruptible pause, and a duration as a
// person reads it.

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** 600000 -> "10m", 90000 -> "1m30s", 4200 -> "5s" (rounded up: "giving up in 5s" is not early). */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const [h, m, s] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  return [h ? `${h}h` : '', m ? `${m}m` : '', s || total === 0 ? `${s}s` : ''].join('');
}

// Waiting in integration tests for what a target does in its own time (a daemon restarted by
// systemd, a job picked up by a worker, a lock released).

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds. After `ms`, fails saying what it waited for, with what
 *  `explain` finds at that moment (logs, status) when given. */
export async function until(
  what: string,
  check: () => Promise<boolean>,
  opts: { ms?: number; every?: number; explain?: () => Promise<string> } = {},
): Promise<void> {
  const end = Date.now() + (opts.ms ?? 20_000);
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(opts.every ?? 300);
  }
  throw new Error(`timed out waiting for: ${what}${opts.explain ? `\n${await opts.explain()}` : ''}`);
}

/** Retries `check` (assertions) until it passes; after `ms`, its last failure fails the test. */
export async function eventually(check: () => Promise<void>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(300);
    }
  }
}

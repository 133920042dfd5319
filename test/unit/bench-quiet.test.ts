// The bench's wait for a quiet machine (bench/quiet.ts): it returns at once when the machine
// counts as quiet, and after its bound, marked busy, when it never does.
import { describe, expect, it } from 'vitest';
import { describeQuiet, quietMoment, summarize } from '../../bench/quiet.js';

describe('quietMoment', () => {
  it('returns after one look when the machine is below the threshold', async () => {
    const g = await quietMoment({ below: 1.01, windowMs: 20, maxWaitMs: 10_000 });
    expect(g.quiet).toBe(true);
    expect(g.busy).not.toBeNull();
    expect(g.waitedMs).toBeLessThan(5_000);
  });

  it('gives up after its bound and says the pair started busy', async () => {
    const g = await quietMoment({ below: -1, windowMs: 20, maxWaitMs: 100 });
    expect(g.quiet).toBe(false);
    expect(g.waitedMs).toBeGreaterThanOrEqual(100);
    const q = summarize([g, { waitedMs: 1000, busy: 0.1, quiet: true }], { below: 0.25, windowMs: 1000, maxWaitMs: 30_000 });
    expect(q).toMatchObject({ pairs: 2, started_busy: 1, below_busy_share: 0.25, max_wait_s: 30 });
    expect(describeQuiet(q)).toContain('1 of 2 pairs started busy');
  });
});

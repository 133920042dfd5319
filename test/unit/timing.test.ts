// KEEL_PHASE_TIMES (src/timing.ts): work phases exclude the phases timed inside them, waits on
// hosts are the union of their intervals, and without the variable nothing is kept. A fake
// clock: nothing here depends on how fast the machine is.
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';

let now = 0;
const advance = (ms: number) => (now += ms);

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  vi.resetModules();
});

async function load(file: string) {
  vi.stubEnv('KEEL_PHASE_TIMES', file);
  vi.resetModules();
  now = 1000;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
  return import('../../src/timing.js');
}

describe('phase times', () => {
  it('nest work phases (each without what is timed inside it) and join overlapping waits', async () => {
    const t = await load('/dev/null');
    t.timed('render', () => {
      advance(30);
      t.timed('roles', () => advance(40));
      advance(30);
    });
    await t.timedAsync('inventory', async () => {
      advance(20);
      t.timed('roles', () => advance(5));
    });
    t.waitStart('connect', 'a'); // a: 0 to 60, b: 30 to 90 (from here)
    advance(30);
    t.waitStart('connect', 'b');
    advance(30);
    t.waitEnd('connect', 'a');
    advance(30);
    t.waitEnd('connect', 'b');
    t.waitStart('probe', 'a');
    advance(10);
    t.waitEnd('probe', 'a');
    const p = t.phaseTimes();
    expect(p.phases).toMatchObject({ render: 60, roles: 45, inventory: 20, connect: 90, probe: 10 });
    expect(p.kinds).toMatchObject({ render: 'work', connect: 'wait' });
    expect(p.waits.connect).toEqual({ from_ms: 1125, to_ms: 1215 });
  });

  it('keeps nothing without KEEL_PHASE_TIMES', async () => {
    const t = await load('');
    expect(t.timed('render', () => 7)).toBe(7);
    t.waitStart('probe', 'a');
    t.waitEnd('probe', 'a');
    expect(t.phaseTimes().phases).toEqual({ module_load: 0 });
  });
});

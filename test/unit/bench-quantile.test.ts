// The bench's scaling figure gives the quartiles of its pairs' growths beside their median: the
// quantile must be the usual one (interpolated between the nearest ranks) and leave its input alone.
import { describe, expect, it } from 'vitest';
import { median, medianInterval, quantile } from '../../bench/report.js';

describe('bench quantile', () => {
  it('interpolates between the nearest ranks, whatever the order of its input', () => {
    const xs = [4, 1, 3, 2];
    expect(quantile(xs, 0.25)).toBeCloseTo(1.75);
    expect(quantile(xs, 0.75)).toBeCloseTo(3.25);
    expect(quantile(xs, 0.5)).toBe(median(xs));
    expect(quantile([1, 2, 3, 4, 5], 0.75)).toBe(4);
    expect(xs).toEqual([4, 1, 3, 2]);
  });

  it('gives the only value of one run, and null for none', () => {
    expect(quantile([1.07], 0.25)).toBe(1.07);
    expect(quantile([1.07], 0.75)).toBe(1.07);
    expect(quantile([], 0.5)).toBeNull();
  });

  // The ranks of the usual tables for a 95 % interval of a median (binomial, p = ½).
  it('gives the median interval at the binomial ranks: 6th and 16th of 21, 2nd and 8th of 9, the extremes of 6, none for 5', () => {
    const shuffled = (n: number) => Array.from({ length: n }, (_, i) => ((i * 11) % n) + 1);
    expect(medianInterval(shuffled(21))).toEqual([6, 16]);
    expect(medianInterval(shuffled(9))).toEqual([2, 8]);
    expect(medianInterval(shuffled(6))).toEqual([1, 6]);
    expect(medianInterval(shuffled(5))).toBeNull();
    expect(medianInterval([])).toBeNull();
    const xs = shuffled(21);
    const copy = [...xs];
    medianInterval(xs);
    expect(xs).toEqual(copy);
  });
});

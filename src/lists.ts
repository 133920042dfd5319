// Small list helpers shared across src/ (one home each, see issue 14).

/** `xs` without repeats, in order, the first of each kept; `key` says which items are the same. */
export function unique<T>(xs: readonly T[], key: (x: T) => unknown = (x) => x): T[] {
  const seen = new Set<unknown>();
  return xs.filter((x) => {
    const k = key(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

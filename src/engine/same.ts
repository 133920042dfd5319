// Deep equality for compiled plans and the values they were compiled from: plan sharing
// (plan-sharing.ts) and compile reuse (compile-reuse.ts) both ask whether two are the same.

/** Deep equality that tells apart undefined from missing, NaN and -0 (Object.is), and Maps
 *  and Sets by their entries in order. Objects other than plain ones, arrays, Maps and Sets
 *  (a resource's type, a Buffer) are the same only when they are the same object. */
export function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && sameList(a, b);
  if (a instanceof Map || a instanceof Set) {
    return Object.getPrototypeOf(a) === Object.getPrototypeOf(b) && a.size === (b as typeof a).size && sameList([...a], [...(b as typeof a)]);
  }
  const proto = Object.getPrototypeOf(a);
  if ((proto !== Object.prototype && proto !== null) || Object.getPrototypeOf(b) !== proto) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function sameList(a: unknown[], b: unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false;
  return true;
}

// Unified diffs of changed files for --diff. Secrets are masked by the output sink; a file
// marked sensitive shows only that it changed.
import { createTwoFilesPatch } from 'diff';
import type { ContentDiff } from '../resources/types.js';

export function formatDiff(d: ContentDiff): string {
  if (d.sensitive) return `--- ${d.path}\n+++ ${d.path}\n(sensitive content changed; not shown)`;
  const before = d.before ?? '';
  const after = d.after ?? '';
  const patch = createTwoFilesPatch(
    d.before === null ? '/dev/null' : d.path,
    d.after === null ? '/dev/null' : d.path,
    before,
    after,
    d.before === null ? '(absent)' : 'before',
    d.after === null ? '(removed)' : 'after',
    { context: 3 },
  );
  return patch
    .split('\n')
    .filter((l) => !/^(Index: |={10,})/.test(l))
    .join('\n')
    .replace(/\n$/, '');
}

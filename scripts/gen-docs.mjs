// `npm run docs`: regenerate docs/resources.md from the resource types (after a build).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderResourceDocs } from '../dist/src/resources/docs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
writeFileSync(join(root, 'docs', 'resources.md'), renderResourceDocs());
console.error('wrote docs/resources.md');

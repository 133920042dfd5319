// The reference of resource types is generated from the code and must be current; every type
// documents every param, and has a converged case (given matching facts: no command) in its
// unit tests.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderResourceDocs } from '../../src/resources/docs.js';
import { resourceTypes } from '../../src/resources/registry.js';

const root = resolve(import.meta.dirname, '..', '..');

describe('resource reference', () => {
  it('docs/resources.md is what `npm run docs` generates', () => {
    const onDisk = readFileSync(join(root, 'docs', 'resources.md'), 'utf8');
    expect(onDisk, 'docs/resources.md is out of date: run `npm run docs`').toBe(renderResourceDocs());
  });

  it('every param of every type has a description, and every type a summary and an example', () => {
    for (const t of resourceTypes.values()) {
      const props = (t.schema as { properties: Record<string, { description?: string }> }).properties;
      for (const [name, p] of Object.entries(props)) expect(p.description, `${t.name}.${name}`).toBeTruthy();
      expect(t.doc.summary.length, t.name).toBeGreaterThan(20);
      expect(t.doc.example, t.name).toContain(`${t.name}:`);
    }
  });

  it('every type has a unit test with a converged case (expectOk of its decide)', () => {
    for (const t of resourceTypes.values()) {
      const file = join(root, 'test', 'unit', 'resources', `${t.name.replace(/_/g, '-')}.test.ts`);
      expect(existsSync(file), `${file} is missing`).toBe(true);
      expect(readFileSync(file, 'utf8'), `${file} has no converged case`).toMatch(/expectOk\(\s*(decide\(|\w+\.decide\()/);
    }
  });
});

// `-e` on the command line: the highest-precedence variables.
//
//  -e key=value     a literal string, as Ansible's k=v: never a number or a boolean, and never
//                   rendered as a template, so text a CI job passes through (a branch name, a PR
//                   title) cannot expand `{{secrets.x}}` into a file;
//  -e @vars.yaml    typed values (numbers, lists, mappings) from a YAML (or JSON) mapping, also
//                   taken as they are; errors name the file, line and column.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { LineCounter, isMap, parseDocument, type Node } from 'yaml';
import { ConfigError, ConfigErrors, configErrorsOf, throwIfAny, type SourceLocation } from '../errors.js';
import type { RawVars } from './raw.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const EXTRA_VARS_HINT = 'values of -e key=value are strings; pass typed values (numbers, booleans, lists) in a file: -e @vars.yaml';

export function readExtraVars(items: string[], root: string): RawVars {
  const out: RawVars = { values: {}, locations: {} };
  const errors: ConfigError[] = [];
  for (const item of items) {
    if (item.startsWith('@')) {
      try {
        const file = readVarsFile(item.slice(1), root);
        Object.assign(out.values, file.values);
        Object.assign(out.locations, file.locations);
      } catch (err) {
        errors.push(...configErrorsOf(err));
      }
      continue;
    }
    const eq = item.indexOf('=');
    if (eq <= 0) {
      errors.push(new ConfigError(`-e expects key=value or @file.yaml, got "${item}"`));
      continue;
    }
    const key = item.slice(0, eq);
    if (!NAME.test(key)) {
      errors.push(new ConfigError(`-e ${key}: not a valid variable name (letters, digits and _, not starting with a digit)`));
      continue;
    }
    out.values[key] = item.slice(eq + 1);
    out.locations[key] = { file: `-e ${key}=...` };
  }
  throwIfAny(errors);
  return out;
}

function readVarsFile(path: string, root: string): RawVars {
  const abs = isAbsolute(path) ? path : resolve(root, path);
  const shown = `-e @${path}`;
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ConfigError(`${shown}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const at = (node: Node | null | undefined): SourceLocation => {
    if (!node?.range) return { file: path };
    const p = lc.linePos(node.range[0]);
    return { file: path, line: p.line, column: p.col };
  };
  if (doc.errors.length) {
    throw new ConfigErrors(
      doc.errors.map((e) => new ConfigError(e.message.split('\n')[0]!, { file: path, line: e.linePos?.[0]?.line, column: e.linePos?.[0]?.col })),
    );
  }
  if (!isMap(doc.contents)) throw new ConfigError(`${shown}: expected a mapping of variable names to values`, { file: path, line: 1 });
  const out: RawVars = { values: {}, locations: {} };
  const data = doc.toJS() as Record<string, unknown>;
  for (const pair of doc.contents.items) {
    const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
    if (!NAME.test(key)) throw new ConfigError(`"${key}" is not a valid variable name`, at(pair.key as Node));
    out.values[key] = data[key];
    out.locations[key] = at(pair.key as Node);
  }
  return out;
}

// Which reader a file needs: keel's YAML (or Ansible's YAML, for ansible_inventory:) or INI.
import path from 'node:path';

const YAML_EXTENSIONS = ['.yaml', '.yml'];

/** .ini/.cfg => INI, .yaml/.yml/.json => YAML; otherwise INI when the text looks like it. */
export function detectFormat(file: string, text: string): 'yaml' | 'ini' {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.ini' || ext === '.cfg') return 'ini';
  if ([...YAML_EXTENSIONS, '.json'].includes(ext)) return 'yaml';
  const first = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
  if (first === undefined) return 'yaml';
  if (/^\[[^\]]+\]$/.test(first)) return 'ini';
  return first.startsWith('---') || /^[^\s=]+:(\s|$)/.test(first) || first.startsWith('{') ? 'yaml' : 'ini';
}

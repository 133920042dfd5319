// keel status for a person: a block per host, a failed process with its last log lines.
import type { HostStatus } from './status.js';
import type { ProcessState } from './status-parse.js';

const when = (iso: string | null | undefined): string => (iso ? iso.replace('T', ' ').replace(/(\.\d+)?Z$/, 'Z') : '?');

function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const text = s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
  return ` (${text} ago)`;
}

function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

function processLine(p: ProcessState, width: number, now: number): string {
  const state = p.state === 'failed' ? 'FAILED' : p.state;
  const restarts = p.restarts ? `, ${p.restarts} restart${p.restarts === 1 ? '' : 's'}` : '';
  const timer = p.lastRun !== undefined ? `; last run ${when(p.lastRun)}${p.nextRun ? `, next ${when(p.nextRun)}` : ''}` : '';
  const since = p.since ? ` since ${when(p.since)}${ago(p.since, now)}` : '';
  return `    ${p.name.padEnd(width)}  ${state.padEnd(8)}${since}${restarts}${timer}  [${p.manager}: ${p.detail}]`;
}

/** The hosts that run the app on different releases (web and workers must not), or none. */
export function splitReleases(hosts: HostStatus[]): string[] {
  const live = hosts.filter((h) => h.release?.live).map((h) => `${h.name} runs ${h.release!.live}`);
  return new Set(hosts.filter((h) => h.release?.live).map((h) => h.release!.live)).size > 1 ? live : [];
}

export function statusText(hosts: HostStatus[], now = Date.now()): string[] {
  const out: string[] = [];
  const split = splitReleases(hosts);
  if (split.length) out.push(`WARNING: hosts run different releases: ${split.join(', ')} (keel deploy or keel rollback puts them on one)`, '');
  for (const h of hosts) {
    if (h.error) {
      out.push(`${h.name}: UNREACHABLE: ${h.error}`, '');
      continue;
    }
    const r = h.release;
    out.push(
      r
        ? `${h.name}: ${r.live} (${r.branch || '?'} @ ${r.sha.slice(0, 12) || '?'}), live since ${when(r.since)}${ago(r.since, now)}` +
            `${r.by ? ` by ${r.by}` : ''}${r.via ? ` (${r.via})` : ''}`
        : `${h.name}: no release live`,
    );
    const procs = h.processes ?? [];
    const width = Math.max(0, ...procs.map((p) => p.name.length));
    if (procs.length) out.push('  processes:', ...procs.map((p) => processLine(p, width, now)));
    const failedChecks = (h.checks ?? []).filter((c) => !c.ok);
    if (h.checks?.length)
      out.push(`  checks: ${failedChecks.length ? `FAILING: ${failedChecks.map((c) => c.name).join(', ')}` : `${h.checks.length} passing`}`);
    for (const p of procs.filter((x) => x.lastLines?.length)) {
      out.push(`  ${p.name} ${p.state === 'failed' ? 'FAILED' : p.state}, its last log lines:`, ...p.lastLines!.map((l) => `    | ${l}`));
    }
    if (h.nginx) {
      const m = h.maintenance;
      out.push(`  nginx: ${h.nginx.state} since ${when(h.nginx.since)}; maintenance: ${m?.on ? `ON since ${when(m.since)}${ago(m.since, now)}` : 'off'}`);
    }
    // Releases and dumps on one file system: one line.
    const mounts = new Map<string, NonNullable<HostStatus['disk']>>();
    for (const d of h.disk ?? []) mounts.set(d.mount, [...(mounts.get(d.mount) ?? []), d]);
    for (const [mount, ds] of mounts) {
      out.push(`  disk: ${bytes(ds[0]!.availableBytes)} free on ${mount} (${ds[0]!.usedPercent}% used), for ${ds.map((d) => d.path).join(' and ')}`);
    }
    if (h.dump) out.push(`  newest dump: ${h.dump.path} (${bytes(h.dump.bytes)}, ${when(h.dump.time)}${ago(h.dump.time, now)})`);
    if (h.lock) out.push(`  lock: ${h.lock.state}${h.lock.holder ? `: ${h.lock.holder}` : ''}`);
    const d = h.drift;
    if (d?.error) out.push(`  drift: unknown: ${d.error}`);
    else if (d) {
      out.push(d.changes ? `  drift: keel plan would change ${d.changes}:` : '  drift: none (keel plan would change nothing)');
      for (const x of d.resources.slice(0, 10)) out.push(`    ${x.id}: ${x.reason}`);
      if (d.resources.length > 10) out.push(`    ... and ${d.resources.length - 10} more (keel plan shows them all)`);
    }
    out.push('');
  }
  return out;
}

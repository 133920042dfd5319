import type { RunReport } from '../engine/results.js';

/** The table printed at the end of a run, one row per host. */
export function formatRecap(report: RunReport): string[] {
  const rows = report.hosts.map((h) => [
    h.name,
    String(h.ok),
    String(h.changed),
    String(h.failed),
    String(h.unreachable),
    String(h.resources.filter((r) => r.status === 'skipped').length),
    String(h.roundTrips),
    `${(h.durationMs / 1000).toFixed(2)}s`,
  ]);
  const head = ['host', 'ok', 'changed', 'failed', 'unreachable', 'skipped', 'round trips', 'time'];
  const widths = head.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const title = `RECAP ${report.env}${report.check ? ' (check mode: nothing was changed)' : ''}`;
  const total =
    `${report.hosts.length} host(s): ${report.ok} ok, ${report.changed} ${report.check ? 'would change' : 'changed'}, ` +
    `${report.failed} failed, ${report.unreachable} unreachable in ${(report.durationMs / 1000).toFixed(2)}s`;
  return [title, fmt(head), ...rows.map(fmt), total];
}

// Requests through a target's own nginx while something happens (a deploy, a rollback, a
// restart): a loop of curl inside the container, so test traffic never leaves the target. It
// counts the answers by status and those whose body holds a marker (the text only a given
// release serves), which is how a test proves that no request failed and that a release that
// failed its checks never served one. Bounded: at most `max` requests and 10 minutes.
import { randomBytes } from 'node:crypto';
import { until } from './wait.js';

/** Where the loop runs: a test target, or an example's target (examples.ts: exampleTarget). */
export interface LoopHost {
  exec(cmd: string[]): Promise<{ code: number | null; stdout: string }>;
}

export interface RequestCounts {
  total: number;
  /** Status code -> how many (000: no answer at all). */
  byStatus: Record<string, number>;
  /** Answers that were not 200. */
  failed: number;
  /** Answers whose body contained the marker. */
  marked: number;
  /** The slowest answer, in ms. */
  slowestMs: number;
}

export async function requestsDuring<T>(
  t: LoopHost,
  during: () => Promise<T>,
  o: { url?: string; host?: string; marker?: string; max?: number } = {},
): Promise<{ result: T; counts: RequestCounts }> {
  const id = randomBytes(4).toString('hex');
  const url = o.url ?? 'http://127.0.0.1/';
  const marker = o.marker ?? `no-marker-${id}`;
  const { result, lines } = await loopDuring(
    t,
    `/tmp/keel-loop-${id}`,
    o.max,
    during,
    (dir) =>
      `w=$(curl -s -o ${dir}/body -w '%{http_code} %{time_total}' --max-time 30 -H 'Host: ${o.host ?? 'localhost'}' '${url}'); ` +
      `if grep -qF '${marker}' ${dir}/body 2>/dev/null; then m=1; else m=0; fi; echo "$w $m" >> ${dir}/out; `,
  );
  const rows = lines.map((l) => l.split(' '));
  const byStatus: Record<string, number> = {};
  for (const [code] of rows) byStatus[code!] = (byStatus[code!] ?? 0) + 1;
  const counts: RequestCounts = {
    total: rows.length,
    byStatus,
    failed: rows.filter(([code]) => code !== '200').length,
    marked: rows.filter(([, , m]) => m === '1').length,
    slowestMs: Math.round(Math.max(...rows.map(([, time]) => Number(time))) * 1000),
  };
  return { result, counts };
}

export function describeCounts(c: RequestCounts): string {
  const statuses = Object.entries(c.byStatus)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  return `${c.total} requests (${statuses}), ${c.failed} failed, ${c.marked} marked, slowest ${c.slowestMs} ms`;
}

/** One answer of answersDuring's loop. */
export interface Answer {
  /** When the request started, ms since the epoch (the target's clock). */
  at: number;
  code: string;
  /** The value of the header asked for ("" without it). */
  header: string;
  /** What the body pattern matched ("" if nothing). */
  match: string;
}

/**
 * Like requestsDuring, but every answer is kept: when it was asked, its status, a header's value
 * (which backend of a load balancer answered) and what a pattern matched in the body (which
 * release served it). For promises over time: "each host switches once", "two releases at
 * most". Bounded the same way.
 */
export async function answersDuring<T>(
  t: LoopHost,
  during: () => Promise<T>,
  o: { url?: string; header: string; pattern: string; max?: number },
): Promise<{ result: T; answers: Answer[] }> {
  const url = o.url ?? 'http://127.0.0.1/';
  const { result, lines } = await loopDuring(
    t,
    `/tmp/keel-answers-${randomBytes(4).toString('hex')}`,
    o.max,
    during,
    (dir) =>
      `at=$(date +%s%3N); c=$(curl -s -D ${dir}/head -o ${dir}/body -w '%{http_code}' --max-time 30 '${url}'); ` +
      `h=$(sed -n 's/^${o.header}: *\\([^\\r]*\\).*/\\1/Ip' ${dir}/head | head -n 1); ` +
      `m=$(grep -oE '${o.pattern}' ${dir}/body | head -n 1); ` +
      `echo "$at $c \${h:--} \${m:--}" >> ${dir}/out; `,
  );
  const answers = lines.map((l) => {
    const [at = '0', code = '', header = '-', ...rest] = l.split(' ');
    const match = rest.join(' ');
    return { at: Number(at), code, header: header === '-' ? '' : header, match: match === '-' ? '' : match };
  });
  return { result, answers };
}

/** Runs `request` (one request, appending a line to DIR/out) in a loop on the target while
 *  `during` runs: started and answering first, then stopped and waited for; its lines. At most
 *  `max` requests (20,000) and 10 minutes. */
async function loopDuring<T>(
  t: LoopHost,
  dir: string,
  max: number | undefined,
  during: () => Promise<T>,
  request: (dir: string) => string,
): Promise<{ result: T; lines: string[] }> {
  const loop =
    `mkdir -p ${dir}; end=$(( $(date +%s) + 600 )); i=0; ` +
    `while [ ! -e ${dir}/stop ] && [ "$i" -lt ${max ?? 20000} ] && [ "$(date +%s)" -lt "$end" ]; do ` +
    `${request(dir)}i=$((i + 1)); done; touch ${dir}/done`;
  await t.exec(['sh', '-c', `mkdir -p ${dir}; (${loop}) >/dev/null 2>&1 &`]);
  const lines = async () => (await t.exec(['sh', '-c', `cat ${dir}/out 2>/dev/null || true`])).stdout.trim().split('\n').filter(Boolean);
  await until('the request loop answers', async () => (await lines()).length > 0, { ms: 30_000 });
  let result: T;
  try {
    result = await during();
  } finally {
    await t.exec(['touch', `${dir}/stop`]);
    await until('the request loop ends', async () => (await t.exec(['test', '-e', `${dir}/done`])).code === 0, { ms: 60_000 });
  }
  return { result, lines: await lines() };
}

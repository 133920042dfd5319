// Fake SSH endpoints for the 1,000-host no-op (bench/fake-hosts.ts): ssh2's Server on
// 127.0.0.1, one listening port per endpoint, run in worker processes (never in the keel
// process being measured). Each endpoint does what a real host's sshd does as far as the
// controller can tell: key exchange, host key signature, public key authentication, one exec
// channel `sh -s`; then it answers each framed script from a recording of a converged host
// (bench/replay.ts), after the recorded host-side time of the probe (`delayMs`).
//
// What it does not cost: no sshd fork and privilege separation, no PAM, no login shell, no sh
// parsing and running the probe (its stat/sha256sum/dpkg-query/systemctl spawns), no Docker
// userland proxy between 127.0.0.1 and a container. Those costs are the hosts', not the
// controller's, which is what this measures.
//
// As a worker: `node dist/bench/fake-endpoint.js` with an IPC channel; it gets one
// WorkerConfig message, answers { ports }, then { stats } to each 'stats' message, and exits
// on 'stop' or when the parent goes.
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ssh2 from 'ssh2';
import type { Connection as ServerConn, ParsedKey } from 'ssh2';
import { answer, framedAnswer, takeFrames, type ProbeRecording } from './replay.js';

export interface WorkerConfig {
  count: number;
  /** OpenSSH private host key (PEM), the same for every endpoint. */
  hostKey: string;
  /** `ssh-ed25519 AAAA...` allowed to log in. */
  userKey: string;
  recording: ProbeRecording;
  /** Wait this long before answering a probe (the real host's time for it). */
  delayMs: number;
}

export interface EndpointStats {
  connections: number;
  open: number;
  authFailures: number;
  execs: number;
  probes: number;
  releases: number;
  unknown: number;
  /** Most exec channels open at once across this worker's endpoints. */
  peakChannels: number;
  errors: string[];
}

export interface FakeEndpoints {
  ports: number[];
  stats(): EndpointStats;
  close(): Promise<void>;
}

export async function startFakeEndpoints(cfg: WorkerConfig): Promise<FakeEndpoints> {
  const parsedUser = ssh2.utils.parseKey(cfg.userKey);
  if (parsedUser instanceof Error) throw parsedUser;
  const user = (Array.isArray(parsedUser) ? parsedUser[0] : parsedUser) as ParsedKey;
  const userBlob = user.getPublicSSH();
  const stats: EndpointStats = { connections: 0, open: 0, authFailures: 0, execs: 0, probes: 0, releases: 0, unknown: 0, peakChannels: 0, errors: [] };
  let channels = 0;
  const live = new Set<ServerConn>();
  const note = (e: string) => {
    if (stats.errors.length < 20) stats.errors.push(e);
  };

  const onConnection = (conn: ServerConn) => {
    stats.connections++;
    // As sshd does (TCP_NODELAY on interactive sessions): else Nagle holds an answer's second
    // write until keel's delayed ACK, 40 ms a script that a real host does not take.
    (conn as ServerConn & { setNoDelay(on: boolean): void }).setNoDelay(true);
    stats.open++;
    live.add(conn);
    conn.on('close', () => {
      stats.open--;
      live.delete(conn);
    });
    conn.on('error', (e: Error) => note(`connection: ${e.message}`));
    conn.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.key.algo !== user.type || !userBlob.equals(ctx.key.data)) {
        if (ctx.method !== 'none') stats.authFailures++;
        return ctx.reject(['publickey']);
      }
      if (!ctx.signature) return ctx.accept();
      if (ctx.blob && user.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
      stats.authFailures++;
      ctx.reject(['publickey']);
    });
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec, rejectExec, info) => {
          if (info.command !== 'sh -s') {
            note(`exec of ${JSON.stringify(info.command)} refused (only sh -s)`);
            return rejectExec();
          }
          const ch = acceptExec();
          stats.execs++;
          channels++;
          stats.peakChannels = Math.max(stats.peakChannels, channels);
          let buf = '';
          let queue = Promise.resolve();
          let ended = false;
          ch.on('data', (d: Buffer) => {
            buf += d.toString('utf8');
            const { frames, rest } = takeFrames(buf);
            buf = rest;
            for (const f of frames) {
              if (f.kind === 'probe') stats.probes++;
              else if (f.kind === 'release') stats.releases++;
              else {
                stats.unknown++;
                note(`unexpected script of ${f.script.length} bytes: ${JSON.stringify(f.script.slice(0, 200))}`);
              }
              // One script at a time, in order, like sh.
              queue = queue.then(async () => {
                if (f.kind === 'probe' && cfg.delayMs > 0) await new Promise((r) => setTimeout(r, cfg.delayMs));
                const out = framedAnswer(f, answer(f, cfg.recording));
                if (ended) return;
                ch.stderr.write(out.stderr);
                ch.write(out.stdout);
              });
            }
          });
          ch.on('end', () => {
            // stdin closed: sh finishes what it was given, then exits 0.
            queue = queue.then(() => {
              if (ended) return;
              ended = true;
              ch.exit(0);
              ch.end();
            });
          });
          ch.on('close', () => {
            ended = true;
            channels--;
          });
          ch.on('error', (e: Error) => note(`channel: ${e.message}`));
        });
      });
    });
  };

  const servers: ssh2.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < cfg.count; i++) {
    const server = new ssh2.Server({ hostKeys: [cfg.hostKey] }, onConnection);
    server.on('error', (e: Error) => note(`server: ${e.message}`));
    // A backlog big enough for every connection of a run arriving at once.
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 }, () => res());
    });
    servers.push(server);
    ports.push((server.address() as AddressInfo).port);
  }
  return {
    ports,
    stats: () => ({ ...stats, errors: [...stats.errors] }),
    close: async () => {
      for (const c of live) c.end();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Worker process entry

type ParentMessage = { type: 'start'; config: WorkerConfig } | { type: 'stats' } | { type: 'stop' };

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href && process.send) {
  let eps: FakeEndpoints | undefined;
  const send = (m: unknown) => process.send!(m);
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'start') {
      startFakeEndpoints(m.config).then(
        (e) => {
          eps = e;
          send({ type: 'ports', ports: e.ports });
        },
        (err: Error) => send({ type: 'error', message: err.message }),
      );
    } else if (m.type === 'stats') {
      send({ type: 'stats', stats: eps?.stats() ?? null, rssMb: process.memoryUsage().rss / 2 ** 20 });
    } else if (m.type === 'stop') {
      void (eps?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      setTimeout(() => process.exit(0), 3000).unref();
    }
  });
}

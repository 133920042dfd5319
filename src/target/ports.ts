// Host ports for local targets. Chosen once, below Linux's ephemeral range (32768 and up by
// default), so an outgoing connection never happens to hold a target's port when it starts
// again; recorded, and reused on every later `keel target up`.
import { createServer } from 'node:net';
import { TARGET_ADDRESS } from './registry.js';

export const PORT_RANGE = { min: 20000, max: 32767 } as const;

/** Can something listen on 127.0.0.1:port right now? */
export function isPortFree(port: number, address = TARGET_ADDRESS): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: address, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A free port of PORT_RANGE not in `taken`, which it joins at once (before any await), so
 * callers running side by side never get the same port.
 */
export async function pickFreePort(taken: Set<number>, random: () => number = Math.random): Promise<number> {
  const span = PORT_RANGE.max - PORT_RANGE.min + 1;
  for (let i = 0; i < 200; i++) {
    const port = PORT_RANGE.min + Math.floor(random() * span);
    if (taken.has(port)) continue;
    taken.add(port);
    if (await isPortFree(port)) return port;
  }
  throw new Error(`no free port found on ${TARGET_ADDRESS} between ${PORT_RANGE.min} and ${PORT_RANGE.max} in 200 tries`);
}

/** The 127.0.0.1 port in a Docker "port is already allocated" / "address already in use" error. */
export function portInUseError(stderr: string): number | undefined {
  if (!/port is already allocated|address already in use/i.test(stderr)) return undefined;
  const m = /127\.0\.0\.1:(\d+)/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

// Bring a freshly started (or reused) target container to "ready for keel": systemd up,
// the client key authorized, the host key known, sshd answering on the published port.
// Shared by `keel target up` and the integration test helper.
import { connect } from 'node:net';
import { dockerExecSh } from './docker-cli.js';
import { TargetNotReadyError } from './errors.js';
import { parsePublicKeyLine } from './keys.js';

// Polls inside the container, so waiting costs one `docker exec`, not one per poll.
// Exit 0 with the state once running/degraded; exit 1 with the last state after ~60 s.
const WAIT_FOR_SYSTEMD = `
i=0
while :; do
  s=$(systemctl is-system-running 2>/dev/null) || true
  case "$s" in running|degraded) echo "$s"; exit 0 ;; esac
  i=$((i + 1))
  if [ "$i" -gt 600 ]; then echo "$s"; systemctl --failed --no-legend 2>&1 || true; exit 1; fi
  sleep 0.1
done`;

// $1 = user. The key arrives on stdin. Idempotent: the key is added once.
const AUTHORIZE_KEY = `
set -eu
user=$1
home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
key=$(cat)
install -d -m 700 -o "$user" -g "$group" "$home/.ssh"
f="$home/.ssh/authorized_keys"
touch "$f"
grep -qxF "$key" "$f" || printf '%s\\n' "$key" >>"$f"
chown "$user:$group" "$f"
chmod 600 "$f"`;

/** Wait until `systemctl is-system-running` says running or degraded; returns which. */
export async function waitForSystemd(container: string): Promise<string> {
  const r = await dockerExecSh(container, WAIT_FOR_SYSTEMD);
  if (r.code !== 0) {
    throw new TargetNotReadyError(container, `systemd did not finish starting (state: ${r.stdout.split('\n')[0] || 'unknown'})`, r.stdout + r.stderr);
  }
  return r.stdout.trim();
}

/** Add a public key to USER's authorized_keys (key on stdin, not argv). */
export async function authorizeKey(container: string, user: string, publicKey: string): Promise<void> {
  parsePublicKeyLine(publicKey); // refuse to write anything but one key line
  const r = await dockerExecSh(container, AUTHORIZE_KEY, { stdin: publicKey.trim(), args: [user] });
  if (r.code !== 0) throw new TargetNotReadyError(container, `could not authorize the client key for ${user}`, r.stderr);
}

/** The container's ed25519 host key line (`ssh-ed25519 AAAA...`). */
export async function readHostKey(container: string): Promise<string> {
  const r = await dockerExecSh(container, 'cat /etc/ssh/ssh_host_ed25519_key.pub');
  if (r.code !== 0) throw new TargetNotReadyError(container, 'sshd has no ed25519 host key', r.stderr);
  const { type, base64 } = parsePublicKeyLine(r.stdout);
  return `${type} ${base64}`;
}

/**
 * Wait until an SSH server banner arrives at address:port. A bare TCP connect is not enough:
 * docker's port proxy accepts connections before sshd listens, then closes them.
 */
export async function waitForSshBanner(address: string, port: number, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      return await readBanner(address, port, 2_000);
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new TargetNotReadyError(`${address}:${port}`, `no SSH banner within ${timeoutMs / 1000} s`, last);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function readBanner(address: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: address, port });
    let buf = '';
    const done = (err: Error | null, banner?: string) => {
      sock.destroy();
      if (err) reject(err);
      else resolve(banner!);
    };
    sock.setTimeout(timeoutMs, () => done(new Error('timed out waiting for the banner')));
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const line = buf.slice(0, nl).trim();
        if (line.startsWith('SSH-')) done(null, line);
        else done(new Error(`not an SSH banner: ${JSON.stringify(line.slice(0, 60))}`));
      }
    });
    sock.on('error', (e) => done(e));
    sock.on('close', () => done(new Error('connection closed before the banner')));
  });
}

export interface PreparedTarget {
  systemState: string;
  /** `ssh-ed25519 AAAA...` */
  hostKey: string;
  banner: string;
}

/** systemd up, root authorized with `publicKey`, host key read, sshd answering on `port`. */
export async function prepareTarget(container: string, publicKey: string, port: number): Promise<PreparedTarget> {
  const systemState = await waitForSystemd(container);
  const [, hostKey] = await Promise.all([authorizeKey(container, 'root', publicKey), readHostKey(container)]);
  const banner = await waitForSshBanner('127.0.0.1', port);
  return { systemState, hostKey, banner };
}

// Role certbot with role nginx on a real systemd target, against a stand-in for Let's
// Encrypt: Debian's pebble (Let's Encrypt's test ACME server), run on the target itself by a
// test-only role, since no ACME server outside this machine can be reached from here
// (test-targets.md). Everything else is real: certbot's webroot challenge through nginx,
// nginx switched to HTTPS in the same run, a second run that requests nothing, a renewal
// that the deploy hook makes nginx serve.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { sh, startTarget, type TestTarget } from '../helpers/target.js';
import { changedIds, provisionItest as provision } from '../helpers/cli.js';
import { writeItappRole } from '../helpers/itapp.js';
import { tempProject, writeInventory, writeRole } from '../helpers/project.js';

const DOMAIN = 'web.keel.test';

/** Test-only role: pebble on 127.0.0.1:14000 with a self-signed certificate, the domain in /etc/hosts. */
const ITPEBBLE_ROLE = `description: test only - Debian's pebble, a real ACME server, standing in for Let's Encrypt (unreachable from here)
resources:
  - package: {name: [pebble, openssl]}
  - directory: {path: /etc/pebble, mode: "0755"}
  - command:
      run: >-
        openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj /CN=localhost
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout /etc/pebble/key.pem -out /etc/pebble/cert.pem
      creates: /etc/pebble/cert.pem
  - file:
      path: /etc/pebble/config.json
      content: |
        {"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
         "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem",
         "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
  - file:
      path: /etc/systemd/system/pebble.service
      content: |
        [Service]
        Environment=PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0
        ExecStart=/usr/bin/pebble -config /etc/pebble/config.json
  - service: {name: pebble, state: started, daemon_reload: true}
  # /etc/hosts is a bind mount in a container: appended to, never replaced.
  - command:
      run: "printf '127.0.0.1 ${DOMAIN}\\\\n' >> /etc/hosts"
      unless: "grep -qw ${DOMAIN.replace(/\./g, '\\\\.')} /etc/hosts"
`;

let target: TestTarget;
let root: string;

const fingerprint = () =>
  sh(target, `echo | openssl s_client -connect 127.0.0.1:443 -servername ${DOMAIN} 2>/dev/null | openssl x509 -noout -fingerprint -sha256`);

beforeAll(async () => {
  target = await startTarget({ name: 'certbot' });
  root = tempProject('roles-certbot');
  writeRole(root, 'itpebble', ITPEBBLE_ROLE);
  writeItappRole(root); // a release at app_root/current with its venv, as keel deploy leaves it
  writeInventory(root, target, {
    roles: ['base', 'itpebble', 'itapp', 'app', 'nginx', 'certbot'],
    vars: {
      app_user: 'acme',
      app_name: 'acme',
      app_module: 'wsgi:application',
      app_workers: 1,
      nginx_health_path: '/ping',
      acme_domains: [DOMAIN],
      certbot_email: 'ops@keel.test',
      certbot_server: 'https://127.0.0.1:14000/dir',
      certbot_ca_bundle: '/etc/pebble/cert.pem',
    },
  });
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("role certbot with nginx, against pebble standing in for Let's Encrypt", () => {
  it('one run gets the certificate through nginx and switches nginx to HTTPS; a second run requests nothing', async () => {
    const first = await provision(root, 'certbot (1st run)');
    const changed = changedIds(first);
    expect(changed.filter((id) => id.startsWith('certbot/command:certbot certonly'))).toHaveLength(1);
    // The HTTPS site was written in the same run, after the certificate existed.
    expect(changed).toContain('nginx/template:/etc/nginx/sites-enabled/acme#2');
    expect(await sh(target, `ls /etc/letsencrypt/live/${DOMAIN}/`)).toMatch(/fullchain\.pem[\s\S]*privkey\.pem/);
    const second = await provision(root, 'certbot (2nd run)');
    expect(second.changed, JSON.stringify(changedIds(second))).toBe(0);

    await sh(target, 'curl -sk https://127.0.0.1:15000/roots/0 > /tmp/pebble-root.pem');
    expect(await sh(target, `curl -s --cacert /tmp/pebble-root.pem https://${DOMAIN}/x`)).toBe('wsgi ok greeting=- path=/x\n');
    expect(await sh(target, `curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://${DOMAIN}/x`)).toBe(`301 https://${DOMAIN}/x`);
    // Renewals are answered over plain HTTP.
    await sh(target, 'mkdir -p /var/www/acme/.well-known/acme-challenge && echo token > /var/www/acme/.well-known/acme-challenge/t');
    expect(await sh(target, `curl -s http://${DOMAIN}/.well-known/acme-challenge/t`)).toBe('token\n');
    expect(await sh(target, 'systemctl is-enabled certbot.timer; systemctl cat certbot.service | grep REQUESTS_CA_BUNDLE')).toBe(
      'enabled\nEnvironment=REQUESTS_CA_BUNDLE=/etc/pebble/cert.pem\n',
    );
  }, 900_000); // a first converge installs nginx, supervisor, certbot and pebble

  it("a renewal (the timer's certbot renew) goes through the webroot and the deploy hook makes nginx serve the new certificate", async () => {
    const before = await fingerprint();
    await sh(target, 'REQUESTS_CA_BUNDLE=/etc/pebble/cert.pem certbot renew --force-renewal --no-random-sleep-on-renew');
    expect(await fingerprint()).not.toBe(before);
    expect(await sh(target, `curl -s --cacert /tmp/pebble-root.pem https://${DOMAIN}/x`)).toBe('wsgi ok greeting=- path=/x\n');
    expect((await provision(root, 'certbot after renewal')).changed).toBe(0);
  });
});

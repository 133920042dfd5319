// Role nginx against a real target: the proxy to the app (role app, gunicorn under supervisor
// on its unix socket), /static/ served from app_root, the maintenance switch file of seed 004
// with the health path left open, `nginx -t` keeping the previous site when a change is
// invalid, and TLS with a self-signed certificate made on the target (certbot is another role).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { writeItappRole, writeWebInventory } from '../helpers/itapp.js';
import { tempProject } from '../helpers/project.js';
import { sh, startTarget, type TestTarget } from '../helpers/target.js';
import { converge, provisionItest as provision, runKeel } from '../helpers/cli.js';

const ROOT = '/home/acme/webapp';
const vars = { app_user: 'acme', app_name: 'acme', app_module: 'wsgi:application', app_workers: 2, nginx_health_path: '/ping' };
// nginx writes its logs in the app's layout (docs/layout.md).
const LOGS = `${ROOT}/logs/nginx`;

let target: TestTarget;
let root: string;

beforeAll(async () => {
  target = await startTarget({ name: 'nginx' });
  root = tempProject('roles-nginx');
  writeItappRole(root);
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** `code body` of a request made inside the target. */
async function get(url: string, extra = ''): Promise<string> {
  return sh(target, `curl -s -k ${extra} -w ' %{http_code}' ${url}`);
}

describe('role nginx on a real target', () => {
  it('proxies to the app, serves /static/, removes the default site; a second run changes nothing', async () => {
    writeWebInventory(root, target, vars);
    await converge(root, 'nginx');
    expect(await get('http://127.0.0.1/a')).toBe('wsgi ok greeting=- path=/a\n 200');
    expect(await get('http://127.0.0.1/static/hello.txt')).toBe('static ok\n 200');
    expect(await get('http://127.0.0.1/static/missing.txt', '-o /dev/null')).toBe(' 404');
    expect((await target.exec(['test', '-e', '/etc/nginx/sites-enabled/default'])).code).not.toBe(0);
    expect(await sh(target, 'grep -c "^[[:space:]]*server_tokens off;" /etc/nginx/nginx.conf')).toBe('1\n');
    expect(await sh(target, `grep -c 'GET /a ' ${LOGS}/access.log`)).toBe('1\n');
    expect(await sh(target, `stat -c '%U %G %a' ${LOGS}`)).toBe('root www-data 750\n');
  });

  it('maintenance_on.html gives 503 with the page on every request, except the health path; removing it gives 200', async () => {
    await sh(target, `printf '<h1>Back soon</h1>\\n' > ${ROOT}/maintenance_on.html`);
    expect(await get('http://127.0.0.1/')).toBe('<h1>Back soon</h1>\n 503');
    expect(await get('http://127.0.0.1/some/page?x=1')).toBe('<h1>Back soon</h1>\n 503');
    expect(await get('http://127.0.0.1/static/hello.txt')).toBe('<h1>Back soon</h1>\n 503');
    expect(await sh(target, 'curl -s -D - -o /dev/null http://127.0.0.1/')).toMatch(/Retry-After: 120/);
    expect(await get('http://127.0.0.1/ping')).toBe('wsgi ok greeting=- path=/ping\n 200');
    await sh(target, `rm ${ROOT}/maintenance_on.html`);
    expect(await get('http://127.0.0.1/')).toBe('wsgi ok greeting=- path=/\n 200');
    // An empty file (touch) is enough.
    await sh(target, `touch ${ROOT}/maintenance_on.html`);
    expect(await get('http://127.0.0.1/', '-o /dev/null')).toBe(' 503');
    await sh(target, `rm ${ROOT}/maintenance_on.html`);
    expect((await provision(root, 'nginx after maintenance')).changed).toBe(0);
  });

  it('a certificate that does not exist yet keeps the site on plain HTTP; one that nginx -t refuses is not kept', async () => {
    const before = await sh(target, 'sha256sum /etc/nginx/sites-enabled/acme');
    writeWebInventory(root, target, { ...vars, nginx_tls_certificate: '/etc/ssl/bad/cert.pem', nginx_tls_certificate_key: '/etc/ssl/bad/key.pem' });
    const waiting = await provision(root, 'nginx, certificate not there yet');
    expect(waiting.changed).toBe(0);
    expect(waiting.hosts[0].resources.find((x: any) => x.status === 'skipped' && /sites-enabled\/acme#2$/.test(x.id)).reason).toBe(
      'when: /etc/ssl/bad/cert.pem does not exist on the host',
    );
    // Files that are not a certificate: the HTTPS site fails nginx -t and is not kept.
    await sh(target, 'mkdir -p /etc/ssl/bad && echo junk > /etc/ssl/bad/cert.pem && echo junk > /etc/ssl/bad/key.pem');
    const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(r.code).toBe(2);
    const failed = r.json().hosts[0].resources.filter((x: any) => x.status === 'failed');
    expect(failed.map((x: any) => x.id)).toEqual(['nginx/template:/etc/nginx/sites-enabled/acme#2']);
    expect(failed[0].output).toMatch(/bad\/cert\.pem[\s\S]*validation failed: nginx -t \(the previous file was kept\)/);
    expect(await sh(target, 'sha256sum /etc/nginx/sites-enabled/acme')).toBe(before);
    expect(await sh(target, 'nginx -t 2>&1')).toMatch(/test is successful/);
    expect(await get('http://127.0.0.1/')).toBe('wsgi ok greeting=- path=/\n 200');
  });

  it('TLS when certificate paths are set: 443 answers, 80 redirects except the health path, body size limit applies', async () => {
    await sh(
      target,
      'mkdir -p /etc/ssl/keel-test && cd /etc/ssl/keel-test && ' +
        'openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout key.pem -out cert.pem 2>/dev/null && chmod 600 key.pem',
    );
    writeWebInventory(root, target, {
      ...vars,
      nginx_server_name: 'localhost',
      nginx_tls_certificate: '/etc/ssl/keel-test/cert.pem',
      nginx_tls_certificate_key: '/etc/ssl/keel-test/key.pem',
      nginx_client_max_body_size: '1k',
    });
    await converge(root, 'nginx tls');
    expect(await get('https://localhost/s')).toBe('wsgi ok greeting=- path=/s\n 200');
    expect(await sh(target, "curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://localhost/x?y=1")).toBe('301 https://localhost/x?y=1');
    expect(await get('http://localhost/ping')).toBe('wsgi ok greeting=- path=/ping\n 200');
    expect(await get('https://localhost/upload', '-o /dev/null --data-binary @/etc/ssl/keel-test/cert.pem')).toBe(' 413');
    expect(await get('https://localhost/upload', '-o /dev/null --data-binary small')).toBe(' 200');
    await sh(target, `touch ${ROOT}/maintenance_on.html`);
    expect(await get('https://localhost/', '-o /dev/null')).toBe(' 503');
    await sh(target, `rm ${ROOT}/maintenance_on.html`);
  });
});

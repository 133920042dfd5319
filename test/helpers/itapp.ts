// A test-only role standing in for `keel deploy` in role tests: a tiny WSGI and ASGI app
// (standard library only) as a release under releases/, with its virtualenv (Debian's
// gunicorn/uvicorn seen through --system-site-packages) and `current` pointing to it, as
// docs/layout.md has it. Put it before `app` in a host's roles.
import { writeInventory, writeRole } from './project.js';
import type { TestTarget } from './target.js';

export const WSGI = `import os


def application(environ, start_response):
    body = "wsgi ok greeting=%s path=%s\\n" % (os.environ.get("GREETING", "-"), environ.get("PATH_INFO"))
    body = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`;

export const ASGI = `import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = ("asgi ok greeting=%s path=%s\\n" % (os.environ.get("GREETING", "-"), scope["path"])).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
`;

export const ITAPP_ROLE = `description: test only - a tiny WSGI and ASGI app as a release, with its venv, and a static file
resources:
  - package: {name: [python3, python3-venv]}
  - directory: {path: "{{app_root}}/releases/itest", owner: "{{app_user}}", group: "{{app_group}}", mode: "0750"}
  - file: {path: "{{app_root}}/releases/itest/wsgi.py", source: wsgi.py, owner: "{{app_user}}", group: "{{app_group}}", mode: "0644"}
  - file: {path: "{{app_root}}/releases/itest/asgi.py", source: asgi.py, owner: "{{app_user}}", group: "{{app_group}}", mode: "0644"}
  - command:
      run: "/usr/bin/python3 -m venv --system-site-packages {{quote app_root}}/venvs/itest"
      user: "{{app_user}}"
      creates: "{{app_root}}/venvs/itest/bin/python"
  - symlink: {path: "{{app_root}}/releases/itest/.venv", target: ../../venvs/itest}
  - symlink: {path: "{{app_root}}/current", target: releases/itest}
  - file: {path: "{{app_root}}/static/hello.txt", content: "static ok\\n", owner: "{{app_user}}", mode: "0644"}
`;

/** roles/itapp in a project directory. */
export function writeItappRole(projectDir: string): void {
  writeRole(projectDir, 'itapp', ITAPP_ROLE, { 'files/wsgi.py': WSGI, 'files/asgi.py': ASGI });
}

/** The inventory of the web stack's tests: web1 on `t`, in group web with base, the stand-in
 *  release, app and nginx. */
export function writeWebInventory(projectDir: string, t: TestTarget, vars: Record<string, unknown>): void {
  writeInventory(projectDir, t, { group: 'web', roles: ['base', 'itapp', 'app', 'nginx'], vars });
}

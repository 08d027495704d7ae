/**
 * nginx `auth_request` in front of the bench origin, for the "whole chain ≥
 * 1.5× nginx auth_request" budget (docs/ARCHITECTURE.md, "Budgets"). Optional: the bench skips it,
 * with a note, when no nginx binary is installed (`apt-get install -y nginx`).
 *
 * nginx runs as a non-daemon child of the bench with its own prefix, config,
 * pid file, error log and temp paths in a temp dir, listening on loopback
 * only; the packaged service and its config are never touched. Settings are
 * the fair best case for nginx:
 * - `worker_processes 2` (the edge runs 2 workers on the same 2 cores);
 * - upstream keep-alive to the origin and to the auth service
 *   (`keepalive 64; proxy_http_version 1.1; proxy_set_header Connection "";`),
 *   with `keepalive_requests` raised so neither side recycles connections in a
 *   run (uWS and the tunnel never do);
 * - `access_log off`, `reuseport` (the kernel shards connections across the
 *   workers, as it does across the edge's uWS workers);
 * - the auth subrequest carries no body; the user id and email it returns are
 *   passed to the origin (`auth_request_set`), as a real deployment would.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

/** The nginx binary on PATH (or the Debian location), or null. */
export function findNginx(): string | null {
  for (const candidate of ['nginx', '/usr/sbin/nginx']) {
    try {
      execFileSync(candidate, ['-v'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5_000 });
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

/** `nginx -v` output ("nginx version: nginx/1.22.1"). */
export function nginxVersion(bin: string): string {
  // nginx prints its version on stderr.
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().replace(/^nginx version:\s*/, '');
}

/** A port free on 127.0.0.1 right now (nginx cannot report a port 0 listen back). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a !== null && typeof a === 'object' ? resolve(a.port) : reject(new Error('bench: no port'))));
    });
  });
}

export interface NginxSetup {
  prefix: string;
  conf: string;
  /** Arguments for the nginx binary. */
  args: string[];
}

/** Writes the prefix dir and nginx.conf; returns the command line. */
export function writeNginxConfig(prefix: string, listenPort: number, originPort: number, authPort: number, workers: number): NginxSetup {
  mkdirSync(prefix, { recursive: true });
  // Workers drop to `nobody` when the master runs as root: let them traverse the prefix for the temp paths.
  chmodSync(prefix, 0o755);
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `# Written by the Mezusphere bench (bench/nginx.ts); removed with its temp dir.
daemon off;
master_process on;
worker_processes ${workers};
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path ${join(prefix, 'client_body')};
    proxy_temp_path ${join(prefix, 'proxy')};
    fastcgi_temp_path ${join(prefix, 'fastcgi')};
    uwsgi_temp_path ${join(prefix, 'uwsgi')};
    scgi_temp_path ${join(prefix, 'scgi')};
    keepalive_timeout 65s;
    keepalive_requests 1000000;

    upstream origin {
        server 127.0.0.1:${originPort};
        keepalive 64;
        keepalive_requests 1000000;
    }
    upstream auth {
        server 127.0.0.1:${authPort};
        keepalive 64;
        keepalive_requests 1000000;
    }

    server {
        listen 127.0.0.1:${listenPort} reuseport;

        location / {
            auth_request /_auth;
            auth_request_set $mezu_user_id $upstream_http_x_user_id;
            auth_request_set $mezu_user_email $upstream_http_x_user_email;
            proxy_set_header X-Mezu-User-Id $mezu_user_id;
            proxy_set_header X-Mezu-User-Email $mezu_user_email;
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location = /_auth {
            internal;
            proxy_pass http://auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`,
  );
  return { prefix, conf, args: ['-p', prefix + '/', '-c', conf, '-e', join(prefix, 'error.log')] };
}

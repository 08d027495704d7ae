/**
 * The project config the security suite runs against: public and protected
 * prefixes, a role-protected prefix, a GET-narrowed rule beside a public one
 * (HEAD must follow GET), per-route body limits, a closed prefix, and a second
 * project on another host.
 */
export const SECURITY_CONFIG = `
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    session: { absolute: 24h, idle: 30m }
    default: required
    max_body: 64KiB
    routes:
      - { path: /public/*,  auth: public }
      - { path: /health,    auth: public }
      - { path: /api/*,     auth: required }
      - { path: /admin/*,   auth: required, roles: [admin] }
      - { path: /reports,   auth: required, roles: [admin], methods: [GET] }
      - { path: /reports,   auth: public }
      - { path: /metrics,   auth: required, roles: [admin] }
      - { path: /upload/*,  auth: public, max_body: 1MiB }
      - { path: /tiny/*,    auth: public, max_body: 16 }
      - { path: /closed/*,  auth: deny }
      - { path: /hooks/*,   auth: required, principals: [service_account] }
  - id: other
    hosts: [other.localhost]
    upstream: demo
    routes:
      - { path: /*, auth: public }
`;

/** A request head for \`path\` on the demo host, CRLF line ends, ending in the blank line. */
export function head(method: string, path: string, fields: string[] = [], version = 'HTTP/1.1'): string {
  return `${method} ${path} ${version}\r\nHost: localhost\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n`;
}

/** A smuggled follow-up on a public path: if the edge ever forwarded it, the canary would record it. */
export const SMUGGLED_PUBLIC = 'GET /public/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n';

/** A smuggled follow-up: a protected path without credentials. If the edge ever parsed it as a request, it must answer 401. */
export const SMUGGLED = 'GET /admin/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n';

/** Paths the canary must never record in the security suite. */
export const NEVER_FORWARDED = ['/admin/smuggled', '/public/smuggled'];

/** Runs `fn` over `items` with at most `limit` in flight (bounded load on the 2-core machine). */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/**
 * One GET on a fresh connection from a chosen loopback source address (Linux
 * loopback takes any 127.x.y.z), for the per-client and per-route limit tests:
 * the edge counts clients by address, so each test client gets its own.
 */
import http from 'node:http';

export interface Answer {
  status: number;
  /** The catalogued error code of a JSON error body, or ''. */
  code: string;
  retryAfter: string;
}

export function getFrom(port: number, path: string, localAddress: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, localAddress, agent: false, headers: { host: 'localhost' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        let code = '';
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? '';
        } catch {
          code = '';
        }
        resolve({ status: res.statusCode ?? 0, code, retryAfter: String(res.headers['retry-after'] ?? '') });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout on ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

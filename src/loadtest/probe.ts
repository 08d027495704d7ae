/**
 * One connection to the target before anything is provisioned or sent. Why:
 * autocannon re-opens a failed connection at once, so a dead target turns into
 * thousands of errors for the whole duration instead of one clear line; and it
 * never verifies a TLS peer, so on https the probe verifies the certificate
 * (system CAs) before a session cookie or API key is sent to that host.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';

export const PROBE_TIMEOUT_MS = 5_000;

/** Host and port as autocannon connects to them (brackets of an IPv6 literal removed). */
export function endpointOf(url: URL): { host: string; port: number } {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { host, port };
}

/** null when the target accepts a connection (and, on https unless `insecure`, presents a valid certificate); else the reason. */
export function probe(url: URL, insecure: boolean, timeoutMs = PROBE_TIMEOUT_MS): Promise<string | null> {
  const { host, port } = endpointOf(url);
  const where = `${host}:${port}`;
  return new Promise((resolve) => {
    const https = url.protocol === 'https:';
    const sock = https
      ? tls.connect({ host, port, rejectUnauthorized: !insecure, ...(net.isIP(host) === 0 ? { servername: host } : {}) })
      : net.connect({ host, port });
    const finish = (reason: string | null) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => finish(`loadtest: cannot connect to ${where}: no ${https ? 'TLS handshake (is it an http:// port?)' : 'answer'} within ${timeoutMs / 1000} s`), timeoutMs);
    sock.once(https ? 'secureConnect' : 'connect', () => finish(null));
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (https && !insecure && err.code !== undefined && /CERT|SELF_SIGNED|HOSTNAME|ALTNAME|UNABLE_TO/.test(err.code)) {
        finish(`loadtest: the TLS certificate of ${where} does not verify (${err.code}); autocannon does not verify certificates, so the loadtest checks first (--insecure skips the check)`);
      } else {
        finish(`loadtest: cannot connect to ${where}: ${err.code ?? err.message}`);
      }
    });
  });
}

/**
 * Prebuilt responses. Status lines and JSON bodies are built once per code at
 * load time; a verdict on the hot path selects one.
 */
import { STATUS_CODES } from 'node:http';
import { Errors, errorBody, type ErrorCode } from '../errors/index.js';
import type { HttpResponse } from '../../native/uws.js';

const statusLines = new Map<number, string>();
export function statusLine(status: number): string {
  let s = statusLines.get(status);
  if (s === undefined) {
    s = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    statusLines.set(status, s);
  }
  return s;
}

interface Prebuilt {
  status: string;
  body: string;
}
const prebuilt = new Map<ErrorCode, Prebuilt>();
for (const code of Object.keys(Errors) as ErrorCode[]) {
  prebuilt.set(code, { status: statusLine(Errors[code].status), body: errorBody(code) });
}

/** Writes a prebuilt error response. Must be called corked (in the handler's top half or inside res.cork). */
export function writeError(res: HttpResponse, code: ErrorCode, requestId: string, closeConnection = false): void {
  const p = prebuilt.get(code)!;
  res
    .writeStatus(p.status)
    .writeHeader('content-type', 'application/json')
    .writeHeader('cache-control', 'no-store')
    .writeHeader('x-mezu-request-id', requestId)
    .end(p.body, closeConnection);
}

/**
 * Login needed. Browsers (GET/HEAD accepting text/html) get a 302 to the
 * hosted login page with the relative path to return to; API clients get 401
 * JSON carrying the same `login_url` (brief §1 step 3).
 */
export function writeLoginRequired(res: HttpResponse, browser: boolean, returnTo: string, requestId: string): void {
  const loginUrl = `/_mezu/login?rd=${encodeURIComponent(returnTo)}`;
  if (browser) {
    res
      .writeStatus('302 Found')
      .writeHeader('location', loginUrl)
      .writeHeader('cache-control', 'no-store')
      .writeHeader('x-mezu-request-id', requestId)
      .end();
    return;
  }
  res
    .writeStatus('401 Unauthorized')
    .writeHeader('content-type', 'application/json')
    .writeHeader('cache-control', 'no-store')
    .writeHeader('www-authenticate', 'Bearer realm="mezusphere"')
    .writeHeader('x-mezu-request-id', requestId)
    .end(errorBody('MEZU_LOGIN_REQUIRED', { login_url: loginUrl }));
}

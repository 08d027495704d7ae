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

/**
 * Writes a prebuilt error response. Must be called corked (in the handler's
 * top half or inside res.cork). With `closeConnection`, see `closeWith`: the
 * response leaves one turn later and the connection is closed after it.
 */
export function writeError(res: HttpResponse, code: ErrorCode, requestId: string, closeConnection = false): void {
  if (closeConnection) return closeWith(res, (r) => writeErrorNow(r, code, requestId, true));
  writeErrorNow(res, code, requestId, false);
}

/** Writes a prebuilt error response at once (corked); `closeConnection` as uWS `end` has it. */
export function writeErrorNow(res: HttpResponse, code: ErrorCode, requestId: string, closeConnection: boolean): void {
  const p = prebuilt.get(code)!;
  res
    .writeStatus(p.status)
    .writeHeader('content-type', 'application/json')
    .writeHeader('cache-control', 'no-store')
    .writeHeader('x-mezu-request-id', requestId)
    .end(p.body, closeConnection);
}

/**
 * Answers from the handler and closes the connection after the answer, with
 * no further request on it reaching the handler. `res.end(body, true)` alone
 * does not do that in the pinned uWS build (20.30), measured with raw sockets
 * (test/security/framing.test.ts): when more requests are already buffered on
 * the connection, uWS writes `Connection: close`, then parses and dispatches
 * the buffered requests anyway and never closes. So the answer is written one
 * event-loop turn later: if the client pipelined anything behind the refused
 * request, uWS sees a request arrive while one is pending and aborts the
 * connection itself (no answer, nothing dispatched); otherwise the answer
 * goes out with `Connection: close` and uWS closes the connection after it
 * (data the client sends after that is not parsed). Only refusals take this
 * path, never a forwarded request. Registers the response's onAborted: call
 * it only before anything else did.
 */
export function closeWith(res: HttpResponse, write: (res: HttpResponse) => void): void {
  const closing = new Closing(res, write);
  res.onAborted(() => closing.abort());
  setImmediate(() => closing.run());
}

class Closing {
  aborted = false;
  constructor(
    readonly res: HttpResponse,
    readonly write: (res: HttpResponse) => void,
  ) {}
  abort(): void {
    this.aborted = true;
  }
  run(): void {
    if (this.aborted) return;
    const res = this.res;
    res.cork(() => this.write(res));
  }
}

/**
 * Login needed. Browsers (GET/HEAD accepting text/html) get a 302 to the
 * hosted login page with the relative path to return to; API clients get 401
 * JSON carrying the same `login_url` (brief §1 step 3).
 */
export function writeLoginRequired(res: HttpResponse, browser: boolean, returnTo: string, requestId: string, closeConnection = false): void {
  if (closeConnection) return closeWith(res, (r) => writeLoginRequiredNow(r, browser, returnTo, requestId, true));
  writeLoginRequiredNow(res, browser, returnTo, requestId, false);
}

function writeLoginRequiredNow(res: HttpResponse, browser: boolean, returnTo: string, requestId: string, closeConnection: boolean): void {
  const loginUrl = `/_mezu/login?rd=${encodeURIComponent(returnTo)}`;
  if (browser) {
    res
      .writeStatus('302 Found')
      .writeHeader('location', loginUrl)
      .writeHeader('cache-control', 'no-store')
      .writeHeader('x-mezu-request-id', requestId)
      .end('', closeConnection);
    return;
  }
  res
    .writeStatus('401 Unauthorized')
    .writeHeader('content-type', 'application/json')
    .writeHeader('cache-control', 'no-store')
    .writeHeader('www-authenticate', 'Bearer realm="mezusphere"')
    .writeHeader('x-mezu-request-id', requestId)
    .end(errorBody('MEZU_LOGIN_REQUIRED', { login_url: loginUrl }), closeConnection);
}

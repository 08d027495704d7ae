/**
 * Prebuilt responses. Status lines and JSON bodies are built once per code at
 * load time; a verdict on the hot path selects one.
 */
import { STATUS_CODES } from 'node:http';
import { Errors, errorBody, type ErrorCode } from './index.js';
import type { HttpResponse } from '../../native/uws.js';

/** Answers that say "busy now": they carry `Retry-After: 1`. */
const RETRY_SOON: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['MEZU_CLIENT_BUSY', 'MEZU_ROUTE_BUSY', 'MEZU_ORIGIN_BUSY']);

const statusLines = new Map<number, string>();
export function statusLine(status: number): string {
  let s = statusLines.get(status);
  if (s === undefined) {
    s = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    statusLines.set(status, s);
  }
  return s;
}

/**
 * The status text and every field but the request id, as one string for
 * `writeStatus` (`200 OK\r\nname: value…\r\nx-mezu-request-id: `): one native
 * call per answer instead of one per field, ~1,000 instructions each
 * (src/front/request.ts writeHead has the measurement). Only constant,
 * known-good text goes in here.
 */
interface Prebuilt {
  head: string;
  body: string;
}
const prebuilt = new Map<ErrorCode, Prebuilt>();
for (const code of Object.keys(Errors) as ErrorCode[]) {
  // Saturation, not failure: the client may come back in a moment (RFC 9110 §10.2.3).
  const retry = RETRY_SOON.has(code) ? '\r\nretry-after: 1' : '';
  prebuilt.set(code, {
    head: `${statusLine(Errors[code].status)}\r\ncontent-type: application/json\r\ncache-control: no-store${retry}\r\nx-mezu-request-id: `,
    body: errorBody(code),
  });
}

/**
 * Writes a prebuilt error response. Must be called corked (in the handler's
 * top half or inside res.cork). With `closeConnection`, see `closeWith`: the
 * response leaves one turn later and the connection is closed after it.
 */
export function writeError(res: HttpResponse, code: ErrorCode, requestId: string, closeConnection = false, head = false): void {
  if (closeConnection) return closeWith(res, (r) => writeErrorNow(r, code, requestId, true, head));
  writeErrorNow(res, code, requestId, false, head);
}

/**
 * Writes a prebuilt error response at once (corked); `closeConnection` as uWS
 * `end` has it. `head`: the request was HEAD, so the answer carries the
 * body's Content-Length and no body (RFC 9110 §9.3.2; a keep-alive client
 * would read the body as the start of the next response).
 */
export function writeErrorNow(res: HttpResponse, code: ErrorCode, requestId: string, closeConnection: boolean, head = false): void {
  const p = prebuilt.get(code)!;
  res.writeStatus(p.head + requestId);
  endBody(res, p.body, closeConnection, head);
}

/** `end(body)`, or for a HEAD request the body's length without the body. */
export function endBody(res: HttpResponse, body: string, closeConnection: boolean, head: boolean): void {
  if (head) endWithoutContent(res, Buffer.byteLength(body), closeConnection);
  else res.end(body, closeConnection);
}

/**
 * Ends a response that carries no content (HEAD, 204, 304), with
 * `reportedLength` as its Content-Length (-1: none). uWS 20.30, measured
 * with raw sockets: `endWithoutBody(n)` with n > 0 leaves the response
 * waiting for n bytes (the next request on the connection aborts it; called
 * in the handler, the process aborts), and `endWithoutBody(undefined, …)`
 * writes `Content-Length: 9223372036854775808`. Only the argument-less call
 * ends cleanly, so the length goes in as a header. To close the connection
 * uWS needs `endWithoutBody(0, true)`, which says `Content-Length: 0`: a
 * refusal that closes, where the length matters to nobody.
 */
export function endWithoutContent(res: HttpResponse, reportedLength: number, closeConnection: boolean): void {
  if (closeConnection) {
    res.endWithoutBody(0, true);
    return;
  }
  if (reportedLength >= 0) res.writeHeader('content-length', String(reportedLength));
  res.endWithoutBody();
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
 * JSON carrying the same `login_url` (docs/ARCHITECTURE.md, "Request path").
 */
export function writeLoginRequired(res: HttpResponse, browser: boolean, returnTo: string, requestId: string, closeConnection = false, head = false): void {
  if (closeConnection) return closeWith(res, (r) => writeLoginRequiredNow(r, browser, returnTo, requestId, true, head));
  writeLoginRequiredNow(res, browser, returnTo, requestId, false, head);
}

const LOGIN_REQUIRED_HEAD = '401 Unauthorized\r\ncontent-type: application/json\r\ncache-control: no-store\r\nwww-authenticate: Bearer realm="mezusphere"\r\nx-mezu-request-id: ';

function writeLoginRequiredNow(res: HttpResponse, browser: boolean, returnTo: string, requestId: string, closeConnection: boolean, head: boolean): void {
  // encodeURIComponent leaves no CR, LF or space in the URL: safe inside the one status string.
  const loginUrl = `/_mezu/login?rd=${encodeURIComponent(returnTo)}`;
  if (browser) {
    res.writeStatus(`302 Found\r\nlocation: ${loginUrl}\r\ncache-control: no-store\r\nx-mezu-request-id: ${requestId}`).end('', closeConnection);
    return;
  }
  res.writeStatus(`${LOGIN_REQUIRED_HEAD}${requestId}`);
  endBody(res, errorBody('MEZU_LOGIN_REQUIRED', { login_url: loginUrl }), closeConnection, head);
}

/**
 * A step-up needed (src/authorize/step-up.ts): browsers get a 302 to the
 * hosted step-up page and back to `returnTo`; API clients get 401 with the
 * rule's RFC 9470 §3 challenge in `WWW-Authenticate` (built once per rule:
 * only quoted tokens and digits, no CR or LF) and `step_up_url` in the body.
 */
export function writeStepUpRequired(res: HttpResponse, browser: boolean, returnTo: string, challenge: string, requestId: string, closeConnection = false, head = false): void {
  if (closeConnection) return closeWith(res, (r) => writeStepUpRequiredNow(r, browser, returnTo, challenge, requestId, true, head));
  writeStepUpRequiredNow(res, browser, returnTo, challenge, requestId, false, head);
}

function writeStepUpRequiredNow(res: HttpResponse, browser: boolean, returnTo: string, challenge: string, requestId: string, closeConnection: boolean, head: boolean): void {
  const url = `/_mezu/step-up?rd=${encodeURIComponent(returnTo)}`;
  if (browser) {
    res.writeStatus(`302 Found\r\nlocation: ${url}\r\ncache-control: no-store\r\nx-mezu-request-id: ${requestId}`).end('', closeConnection);
    return;
  }
  res.writeStatus(`401 Unauthorized\r\ncontent-type: application/json\r\ncache-control: no-store\r\nwww-authenticate: ${challenge}\r\nx-mezu-request-id: ${requestId}`);
  endBody(res, errorBody('MEZU_STEP_UP_REQUIRED', { step_up_url: url }), closeConnection, head);
}

/**
 * The uWS side of the hosted pages: copies the request, reads a form body
 * (bounded, chunks copied because uWS neuters them on return), runs the flow,
 * and writes the answer corked, after checking the client did not go away
 * (uWS rules: native/uws.ts). The proxied request path never comes here.
 */
import type { Log } from '../runtime/index.js';
import type { HttpResponse } from '../../native/uws.js';
import { peerAddress } from '../../native/uws.js';
import type { CompiledConfig, CompiledProject } from '../config/index.js';
import { writeError, statusLine } from '../errors/http.js';
import { LoginService, type PageRequest, type PageResponse } from './flows/index.js';

/** Largest form accepted: a login form is well under 1 KiB; 16 KiB leaves room for a 256-character password and a long `rd`. */
export const MAX_FORM_BYTES = 16 * 1024;
const FORM_TYPE = 'application/x-www-form-urlencoded';

export class LoginPages {
  /** Hosted-page requests being answered (a drain waits for them: a login's session commit must not be cut). */
  inFlight = 0;

  constructor(
    private readonly service: LoginService,
    private readonly log: Log,
  ) {}

  serves(path: string): boolean {
    return LoginService.serves(path);
  }

  /**
   * Serves one hosted page. `fields` are the request's header fields already
   * copied out of the uWS request (flat [name, value, …]); nothing here reads
   * the request object.
   */
  serve(res: HttpResponse, rid: string, method: string, path: string, query: string, fields: readonly string[], hostHeader: string, project: CompiledProject, cfg: CompiledConfig): void {
    let cookie = '';
    let origin = '';
    let secFetchSite = '';
    let userAgent = '';
    let forwardedFor = '';
    let contentType = '';
    let contentLength = -1;
    let chunked = false;
    for (let i = 0; i < fields.length; i += 2) {
      const n = fields[i]!;
      const v = fields[i + 1]!;
      if (n === 'cookie') cookie = cookie === '' ? v : `${cookie}; ${v}`;
      else if (n === 'origin') origin = v;
      else if (n === 'sec-fetch-site') secFetchSite = v.toLowerCase();
      else if (n === 'user-agent') userAgent = v;
      else if (n === 'x-forwarded-for') forwardedFor = forwardedFor === '' ? v : `${forwardedFor}, ${v}`;
      else if (n === 'content-type') contentType = v.toLowerCase();
      else if (n === 'content-length') contentLength = /^\d{1,10}$/.test(v) ? Number(v) : Number.MAX_SAFE_INTEGER;
      else if (n === 'transfer-encoding') chunked = true;
    }
    const req: PageRequest = {
      method, path, query, hostHeader, cookie, origin, secFetchSite, userAgent,
      socketIp: peerAddress(res),
      forwardedFor, body: '',
    };
    const state = { aborted: false, done: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    const run = () => {
      this.inFlight++;
      this.service.handle(req, project, cfg).then(
        (r) => {
          this.inFlight--;
          if (state.aborted) return;
          res.cork(() => writePage(res, rid, method === 'HEAD', r));
        },
        (err: Error) => {
          this.inFlight--;
          this.log(`login: request ${rid} to ${path} failed (${(err as { code?: string }).code ?? 'MEZU_INTERNAL'}): ${err.stack ?? err.message}`, { level: 'error', request_id: rid });
          if (state.aborted) return;
          res.cork(() => writeError(res, 'MEZU_INTERNAL', rid));
        },
      );
    };
    if (method !== 'POST') {
      run();
      return;
    }
    if (!contentType.startsWith(FORM_TYPE)) {
      writeError(res, 'MEZU_FORM_INVALID', rid, true);
      return;
    }
    if (contentLength > MAX_FORM_BYTES) {
      writeError(res, 'MEZU_FORM_TOO_LARGE', rid, true);
      return;
    }
    if (contentLength <= 0 && !chunked) {
      run();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((ab, isLast) => {
      if (state.done || state.aborted) return;
      size += ab.byteLength;
      if (size > MAX_FORM_BYTES) {
        state.done = true;
        res.cork(() => writeError(res, 'MEZU_FORM_TOO_LARGE', rid, true));
        return;
      }
      // The ArrayBuffer is neutered when this callback returns: copy it.
      chunks.push(Buffer.from(new Uint8Array(ab)));
      if (isLast) {
        state.done = true;
        req.body = Buffer.concat(chunks).toString('utf8');
        run();
      }
    });
  }
}

function writePage(res: HttpResponse, rid: string, head: boolean, r: PageResponse): void {
  res.writeStatus(statusLine(r.status));
  for (const [k, v] of r.headers) res.writeHeader(k, v);
  res.writeHeader('x-mezu-request-id', rid);
  if (r.code !== null) res.writeHeader('x-mezu-error-code', r.code);
  if (head) res.endWithoutBody();
  else res.end(r.body);
}

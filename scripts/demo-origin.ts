#!/usr/bin/env node
/**
 * The demo origin: answers every request with JSON listing the method, the
 * path, every `x-mezu-*` header and the `traceparent`/`tracestate` it
 * received, so a user sees exactly what their application would get. With `--record`, it also keeps the requests it
 * received, readable directly (not through the edge) at `GET /__origin/requests`
 * and clearable with `DELETE /__origin/requests`: the integration tests' canary.
 * A request is recorded as soon as its head arrives (`complete` turns true when
 * its body has been read, `aborted` when the connection went away first), so a
 * request that was forwarded but never finished is still seen.
 *
 * `?status=204|304` answers that status with no body; `?delay=MS` answers after MS milliseconds; `?bytes=N` answers with N bytes of
 * application/octet-stream, streamed with backpressure (never more than one
 * 64 KiB chunk held).
 *
 * Long-lived answers, for what an edge must carry besides request/response:
 *
 * - `/api/v1/ws`: a WebSocket (uWS's own, no compression, messages up to
 *   16 MiB, no idle timeout). Every message is echoed with its type; the text
 *   `whoami` is answered with `{"whoami": {…}, "protocol": "…"}` — the
 *   handshake's `x-mezu-*`, `x-forwarded-*` and `traceparent` fields and the
 *   subprotocol chosen (the first the client offered of `echo.v1`, `chat`);
 *   the text `close:<code>:<reason>` makes the origin close with that code and
 *   reason; `flood:<n>` makes it send n bytes in 64 KiB binary messages, as
 *   fast as the client's backpressure allows (never more than 1 MiB held).
 *   A handshake is recorded like a request (with `upgrade: true`); with
 *   `--record`, `GET /__origin/websockets` says how many are open
 *   (`{"open": n, "opened": total}`).
 * - `GET /api/v1/events`: Server-Sent Events, one `{"time", "n"}` event a
 *   second (the first at once) until the client goes away.
 * - `GET /api/v1/live`: a page that uses both from a browser.
 */
import { parseArgs } from 'node:util';
import { loadUws, sendMessage, type HttpResponse, type WebSocket, type WebSocketBehavior } from '../native/uws.js';

interface Seen {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string[]>;
  bodyBytes: number;
  /** The whole body was read (or there was none). */
  complete: boolean;
  /** The connection went away before the answer was sent. */
  aborted: boolean;
  /** A WebSocket handshake (upgraded). */
  upgrade?: true;
}


/** What a WebSocket keeps from its handshake (the HttpRequest is gone once `upgrade` returns). */
interface WsData {
  whoami: Record<string, string | string[]>;
  protocol: string;
  /** Bytes `flood:<n>` still has to send. */
  flood: number;
  /** A pump is scheduled (see the drain handler). */
  pumpQueued: boolean;
  closed: boolean;
}

const FLOOD_CHUNK = Buffer.alloc(64 * 1024, 0x66);
/** `flood:<n>` sends while uWS holds less than this for the client, then waits for drain. */
const FLOOD_BUFFERED = 1024 * 1024;

/** Sends what `flood:<n>` still owes, as far as the client's backpressure allows. */
function pumpFlood(ws: WebSocket<WsData>): void {
  const d = ws.getUserData();
  while (d.flood > 0 && ws.getBufferedAmount() < FLOOD_BUFFERED) {
    const n = Math.min(d.flood, FLOOD_CHUNK.length);
    d.flood -= n;
    sendMessage(ws, FLOOD_CHUNK.subarray(0, n), true);
  }
}

/** The drain handler's pump; `d` is read first because a closed uWS WebSocket throws on any use. */
function pumpLater(ws: WebSocket<WsData>, d: WsData): void {
  d.pumpQueued = false;
  if (!d.closed) pumpFlood(ws);
}

/** Subprotocols the WebSocket speaks; the first the client offers of these is chosen (RFC 6455 §4.2.2). */
const SUBPROTOCOLS = ['echo.v1', 'chat'];
/** The fields `whoami` reports: what the edge and the Warpgate add to a request. */
const WHOAMI_RE = /^(?:x-mezu-|x-forwarded-|traceparent$)/;

const CHUNK = Buffer.alloc(64 * 1024, 0x62);
const MAX_BYTES = 1 << 30;

/**
 * `/api/v1/live`: the WebSocket and the event stream from a browser, on one
 * self-contained page (the application's own, so inline script and style).
 * Status lines by id, for the browser tests: `ws-status` (`open`, or
 * `closed <code> <reason>`), `sse-status` (`open`; `reconnecting` when the
 * stream dropped and the browser is about to retry; `closed` once the browser
 * gave up, e.g. when the retry was answered 401), `echoes` (one item per
 * echo), `ticks` (the latest event's count), `whoami`.
 */
const LIVE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Live: WebSocket and Server-Sent Events</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
h2 { font-size: 1.1rem; margin-top: 1.75rem; }
h3 { font-size: 1rem; }
pre { background: #f3f3f3; padding: .75rem; overflow: auto; font-size: 13px; }
.status { font-weight: 600; }
input { font: inherit; padding: .2rem .4rem; }
</style>
</head>
<body>
<main>
<h1>Live</h1>
<p>A WebSocket to <code>/api/v1/ws</code> and Server-Sent Events from <code>/api/v1/events</code>.</p>
<section aria-labelledby="ws-title">
<h2 id="ws-title">WebSocket</h2>
<p>Status: <span id="ws-status" class="status" role="status">connecting</span></p>
<form id="ws-form">
<label for="ws-input">Message</label>
<input id="ws-input" name="message" autocomplete="off" required>
<button type="submit">Send</button>
</form>
<h3 id="echoes-title">Echoes</h3>
<ul id="echoes" aria-labelledby="echoes-title" aria-live="polite"></ul>
<h3 id="whoami-title">Who am I</h3>
<pre id="whoami" aria-labelledby="whoami-title"></pre>
</section>
<section aria-labelledby="sse-title">
<h2 id="sse-title">Server-Sent Events</h2>
<p>Status: <span id="sse-status" class="status" role="status">connecting</span></p>
<p>Ticks: <span id="ticks">0</span> <span id="tick-time"></span></p>
</section>
</main>
<script>
(function () {
  'use strict';
  function $(id) { return document.getElementById(id); }
  var ws = new WebSocket((location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/api/v1/ws', ['echo.v1']);
  ws.onopen = function () {
    $('ws-status').textContent = 'open';
    ws.send('whoami');
  };
  ws.onclose = function (e) { $('ws-status').textContent = 'closed ' + e.code + ' ' + e.reason; };
  ws.onmessage = function (e) {
    if (typeof e.data === 'string') {
      var d = null;
      try { d = JSON.parse(e.data); } catch (_) { d = null; }
      if (d !== null && typeof d === 'object' && d.whoami) {
        $('whoami').textContent = JSON.stringify(d.whoami, null, 2);
        return;
      }
    }
    var li = document.createElement('li');
    li.textContent = typeof e.data === 'string' ? e.data : '(binary, ' + e.data.size + ' bytes)';
    $('echoes').appendChild(li);
  };
  $('ws-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var input = $('ws-input');
    if (ws.readyState !== WebSocket.OPEN || input.value === '') return;
    ws.send(input.value);
    input.value = '';
  });
  var es = new EventSource('/api/v1/events');
  es.onopen = function () { $('sse-status').textContent = 'open'; };
  // A dropped stream is retried by the browser (readyState CONNECTING); an answer that is not a
  // 200 event stream (a 401 once the session is gone) ends it for good (readyState CLOSED).
  es.onerror = function () { $('sse-status').textContent = es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'; };
  es.onmessage = function (e) {
    var d = JSON.parse(e.data);
    $('ticks').textContent = String(d.n);
    $('tick-time').textContent = d.time;
  };
})();
</script>
</body>
</html>
`;

/** Streams `total` bytes one CHUNK at a time, resuming from onWritable. */
function streamBytes(res: HttpResponse, total: number, isAborted: () => boolean): void {
  let sent = 0;
  const pump = (): boolean => {
    for (;;) {
      if (isAborted()) return true;
      const start = sent;
      const base = res.getWriteOffset();
      const [ok, done] = res.tryEnd(CHUNK.subarray(0, Math.min(CHUNK.length, total - start)), total);
      if (done) return true;
      if (!ok) {
        // The socket took part of the chunk (offset - base bytes); the content is constant, so go on from there.
        res.onWritable((offset) => {
          sent = start + (offset - base);
          return pump();
        });
        return false;
      }
      sent = start + Math.min(CHUNK.length, total - start);
    }
  };
  res.cork(() => {
    res.writeHeader('content-type', 'application/octet-stream');
    pump();
  });
}

/**
 * Server-Sent Events: one event a second, the first at once, until the client goes away. The
 * first event sets the reconnection time to one second (browsers wait about three by default),
 * so a client whose stream was cut retries, and learns the answer, soon.
 */
function serveEvents(res: HttpResponse, entry: Seen): void {
  let n = 0;
  let timer: NodeJS.Timeout | null = null;
  const event = () => {
    n++;
    res.write(`${n === 1 ? 'retry: 1000\n' : ''}data: ${JSON.stringify({ time: new Date().toISOString(), n })}\n\n`);
  };
  res.onAborted(() => {
    entry.aborted = true;
    if (timer !== null) clearInterval(timer);
  });
  res.cork(() => {
    res.writeHeader('content-type', 'text/event-stream');
    res.writeHeader('cache-control', 'no-store');
    event();
  });
  // Outside a uWS callback, writes are corked by hand: one syscall per event.
  timer = setInterval(() => res.cork(event), 1000);
}

function sendWhoami(ws: WebSocket<WsData>): void {
  const d = ws.getUserData();
  sendMessage(ws, JSON.stringify({ whoami: d.whoami, protocol: d.protocol }), false);
}

export function startDemoOrigin(host: string, port: number, record: boolean): Promise<number> {
  const uws = loadUws();
  const seen: Seen[] = [];
  const sockets = { open: 0, opened: 0 };
  const app = uws.App();
  const remember = (entry: Seen) => {
    if (!record) return;
    seen.push(entry);
    if (seen.length > 10_000) seen.shift();
  };
  const behavior: WebSocketBehavior<WsData> = {
    maxPayloadLength: 16 * 1024 * 1024,
    // The edge owns idle timeouts; a demo socket stays until a side closes it.
    idleTimeout: 0,
    // No permessage-deflate: frames go through the edge as sent, which is what the tests read.
    compression: uws.DISABLED,
    // An echo of a 16 MiB message must not be dropped by the default 64 KiB limit.
    maxBackpressure: 64 * 1024 * 1024,
    upgrade: (res, req, context) => {
      const headers: Record<string, string[]> = {};
      req.forEach((k, v) => {
        (headers[k] ??= []).push(v);
      });
      const whoami: Record<string, string | string[]> = {};
      for (const k of Object.keys(headers)) if (WHOAMI_RE.test(k)) whoami[k] = headers[k]!.length === 1 ? headers[k]![0]! : headers[k]!;
      let protocol = '';
      for (const p of req.getHeader('sec-websocket-protocol').split(',')) {
        if (SUBPROTOCOLS.includes(p.trim())) {
          protocol = p.trim();
          break;
        }
      }
      remember({ method: req.getCaseSensitiveMethod(), path: req.getUrl(), query: req.getQuery() ?? '', headers, bodyBytes: 0, complete: true, aborted: false, upgrade: true });
      const data: WsData = { whoami, protocol, flood: 0, pumpQueued: false, closed: false };
      // No extensions: permessage-deflate is not offered back.
      res.upgrade(data, req.getHeader('sec-websocket-key'), protocol, '', context);
    },
    open: () => {
      sockets.open++;
      sockets.opened++;
    },
    message: (ws, message, isBinary) => {
      if (!isBinary) {
        const text = Buffer.from(message).toString('utf8');
        if (text === 'whoami') return sendWhoami(ws);
        const close = /^close:(\d{1,4}):([^]*)$/.exec(text);
        if (close !== null) return ws.end(Number(close[1]), close[2]!);
        const flood = /^flood:(\d{1,10})$/.exec(text);
        if (flood !== null) {
          ws.getUserData().flood = Math.min(Number(flood[1]), MAX_BYTES);
          return pumpFlood(ws);
        }
      }
      sendMessage(ws, new Uint8Array(message), isBinary);
    },
    // Not from inside the drain handler: uWS writes a message of 16 KiB or more to a socket with
    // nothing buffered by writev (us_socket_write2), which on a short write asks for writable
    // events without marking the write as failed; the drain handler runs inside uWS's writable
    // event, which then stops asking for them when it returns. The message's unwritten rest
    // stayed buffered for good when it was the last one sent (the slow reader's test stalled
    // one flood in eight, one message short). From a setImmediate the request sticks.
    drain: (ws) => {
      const d = ws.getUserData();
      if (d.pumpQueued || d.flood === 0) return;
      d.pumpQueued = true;
      setImmediate(pumpLater, ws, d);
    },
    close: (ws) => {
      ws.getUserData().closed = true;
      sockets.open--;
    },
  };
  app.ws('/api/v1/ws', behavior);
  app.any('/*', (res, req) => {
    const method = req.getCaseSensitiveMethod();
    const path = req.getUrl();
    const query = req.getQuery() ?? '';
    const headers: Record<string, string[]> = {};
    req.forEach((k, v) => {
      (headers[k] ??= []).push(v);
    });
    if (record && path === '/__origin/requests') {
      if (method === 'DELETE') seen.length = 0;
      res.writeHeader('content-type', 'application/json').end(JSON.stringify(seen));
      return;
    }
    if (record && path === '/__origin/websockets') {
      res.writeHeader('content-type', 'application/json').end(JSON.stringify(sockets));
      return;
    }
    if (record && path.startsWith('/__origin/')) {
      res.writeStatus('404 Not Found').end();
      return;
    }
    const entry: Seen = { method, path, query, headers, bodyBytes: 0, complete: false, aborted: false };
    remember(entry);
    if (method === 'GET' && path === '/api/v1/events') {
      entry.complete = true;
      return serveEvents(res, entry);
    }
    if (method === 'GET' && path === '/api/v1/live') {
      entry.complete = true;
      res.writeHeader('content-type', 'text/html; charset=utf-8').writeHeader('cache-control', 'no-store').end(LIVE_PAGE);
      return;
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      entry.aborted = true;
    });
    let bodyBytes = 0;
    const finish = () => {
      entry.complete = true;
      if (aborted) return;
      const mezu: Record<string, string | string[]> = {};
      for (const k of Object.keys(headers)) if (k.startsWith('x-mezu-')) mezu[k] = headers[k]!.length === 1 ? headers[k]![0]! : headers[k]!;
      const slow = /(?:^|&)delay=(\d+)/.exec(query);
      const big = /(?:^|&)bytes=(\d+)/.exec(query);
      const bodiless = /(?:^|&)status=(204|304)(?:&|$)/.exec(query);
      const reply = () => {
        if (aborted) return;
        if (big) return streamBytes(res, Math.min(Number(big[1]), MAX_BYTES), () => aborted);
        // No content by definition (RFC 9110 §15.3.5, §15.4.5): what a proxy must pass on without a body.
        if (bodiless) return res.cork(() => res.writeStatus(bodiless[1] === '204' ? '204 No Content' : '304 Not Modified').endWithoutBody());
        res.cork(() => {
          res.writeHeader('content-type', 'application/json');
          // The W3C trace context beside the identity: the edge's span as parent, the client's trace continued or a new one.
          res.end(JSON.stringify({ method, path, query, bodyBytes, identity: mezu, traceparent: headers.traceparent?.[0] ?? null, tracestate: headers.tracestate?.[0] ?? null }));
        });
      };
      if (slow) setTimeout(reply, Math.min(Number(slow[1]), 120_000));
      else reply();
    };
    const hasBody = headers['content-length'] !== undefined && headers['content-length'][0] !== '0' || headers['transfer-encoding'] !== undefined;
    if (!hasBody) return finish();
    res.onData((chunk, isLast) => {
      bodyBytes += chunk.byteLength;
      entry.bodyBytes = bodyBytes;
      if (isLast) finish();
    });
  });
  return new Promise((resolve, reject) => {
    app.listen(host, port, (s) => {
      if (!s) return reject(new Error(`demo-origin: cannot listen on ${host}:${port}`));
      resolve(uws.us_socket_local_port(s));
    });
  });
}

if (require.main === module) {
  let v: { host?: string; port?: string; record?: boolean };
  try {
    v = parseArgs({ options: { host: { type: 'string' }, port: { type: 'string' }, record: { type: 'boolean' } }, strict: true }).values;
  } catch (err) {
    process.stderr.write(`demo-origin: ${(err as Error).message}\nusage: demo-origin [--host 127.0.0.1] [--port 3000] [--record]\n`);
    process.exit(2);
  }
  startDemoOrigin(v.host ?? '127.0.0.1', Number(v.port ?? '3000'), v.record ?? false).then(
    (port) => process.stdout.write(JSON.stringify({ event: 'ready', port }) + '\n'),
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * The process logger (src/runtime/log.ts): one JSON line per call with the
 * level name, the process kind, the worker index and the fields given; the
 * message text as written; levels filtered; secret-named fields redacted;
 * the text format for `npm start` keeps the old `[edge w0] msg` shape.
 */
import test from 'ava';
import { createLog, parseLogFormat, textLine } from '../../../src/runtime/index.js';

function capture(format: 'json' | 'text', worker?: number, level?: 'debug' | 'info' | 'warn' | 'error') {
  const lines: string[] = [];
  const log = createLog('edge', worker, { format, ...(level === undefined ? {} : { level }), dest: { write: (l: string) => void lines.push(l) } });
  return { log, lines };
}

test('a JSON line per call: level name, time, pid, process, worker, the message unchanged, and the fields', (t) => {
  const { log, lines } = capture('json', 1);
  log('tunnel: warpgate abc connected for pool demo (worker 1)');
  log('edge: request r1 failed while forwarding ("x")', { level: 'error', request_id: 'r1', code: 'MEZU_INTERNAL' });
  t.is(lines.length, 2);
  t.true(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
  const a = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.is(a.level, 'info');
  t.is(a.proc, 'edge');
  t.is(a.worker, 1);
  t.is(a.pid, process.pid);
  t.regex(String(a.time), /^\d{4}-\d\d-\d\dT/);
  t.is(a.msg, 'tunnel: warpgate abc connected for pool demo (worker 1)');
  t.regex(lines[0]!, /connected for pool demo \(worker 1\)/, 'a plain-text wait still matches the raw line');
  const b = JSON.parse(lines[1]!) as Record<string, unknown>;
  t.is(b.level, 'error');
  t.is(b.request_id, 'r1');
  t.is(b.code, 'MEZU_INTERNAL');
  t.is(b.msg, 'edge: request r1 failed while forwarding ("x")');
});

test('the primary and the other processes carry no worker field', (t) => {
  const { log, lines } = capture('json');
  log('listening');
  t.false('worker' in (JSON.parse(lines[0]!) as object));
});

test('levels below the one set are dropped', (t) => {
  const { log, lines } = capture('json', 0, 'warn');
  log('info line');
  log('debug line', { level: 'debug' });
  log('warn line', { level: 'warn' });
  t.deepEqual(lines.map((l) => (JSON.parse(l) as { msg: string }).msg), ['warn line']);
});

test('fields named like secrets are redacted whatever a call site passes', (t) => {
  const { log, lines } = capture('json');
  log('oops', { password: 'hunter2', token: 'tok-123', authorization: 'Bearer mzk_abc', cookie: 'mezu_session=s', secret: 'x', assertion: 'a.b.c' });
  for (const s of ['hunter2', 'tok-123', 'mzk_abc', 'mezu_session=s', 'a.b.c']) t.false(lines[0]!.includes(s), s);
  t.is((JSON.parse(lines[0]!) as { password: string }).password, '[redacted]');
});

test('text format: `[edge w0] msg key=value`, the level only when warn or error', (t) => {
  const { log, lines } = capture('text', 0);
  log('tunnel: warpgate abc connected for pool demo (worker 0)');
  log('edge: request r1 failed', { level: 'error', request_id: 'r1' });
  t.is(lines[0], '[edge w0] tunnel: warpgate abc connected for pool demo (worker 0)\n');
  t.is(lines[1], '[edge w0] edge: request r1 failed level=error request_id=r1\n');
  t.is(textLine('{"level":"info","proc":"warpgate","msg":"up"}'), '[warpgate] up\n');
});

test('the format option: json by default, text, anything else refused', (t) => {
  t.is(parseLogFormat(undefined), 'json');
  t.is(parseLogFormat('text'), 'text');
  t.is(parseLogFormat('json'), 'json');
  t.is(parseLogFormat('yaml'), null);
});

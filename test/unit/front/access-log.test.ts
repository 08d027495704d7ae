/**
 * The access log (src/front/access-log.ts): one `access` line per sampled
 * answer, with the request id, the trace id, the path without its query, the
 * status and the rule; never the query, a header or a cookie. Sampling by
 * rate; `--access-log` parsing.
 */
import test from 'ava';
import { AccessLog, parseAccessLogRate, type EdgeRequest } from '../../../src/front/index.js';
import type { LogFields } from '../../../src/runtime/index.js';

function req(over: Partial<EdgeRequest> = {}): EdgeRequest {
  return {
    id: 'req-1',
    method: 'GET',
    host: 'app.example.com',
    url: '/raw',
    target: '/_mezu/reset?token=SECRET-TOKEN',
    trace: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    startedAt: performance.now() - 2,
    project: { id: 'demo' },
    policy: { rule: 'demo:/api/v1/*' },
    clientAddress: '203.0.113.7',
    cookie: 'mezu_session=SESSION-SECRET',
    authorization: 'Bearer mzk_KEY-SECRET',
    ...over,
  } as unknown as EdgeRequest;
}

test('a line per answer at rate 1: request id, trace id, path without the query, status, rule; no secret', (t) => {
  const lines: Array<[string, LogFields | undefined]> = [];
  const a = new AccessLog(1, (m, f) => void lines.push([m, f]));
  a.record(req(), 200);
  t.is(lines.length, 1);
  const [msg, f] = lines[0]!;
  t.is(msg, 'access');
  t.is(f!.request_id, 'req-1');
  t.is(f!.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736');
  t.is(f!.path, '/_mezu/reset');
  t.is(f!.status, 200);
  t.is(f!.project, 'demo');
  t.is(f!.rule, 'demo:/api/v1/*');
  t.true((f!.ms as number) >= 2);
  const text = JSON.stringify(lines);
  for (const s of ['SECRET-TOKEN', 'SESSION-SECRET', 'KEY-SECRET']) t.false(text.includes(s), s);
});

test('a request refused before routing logs its raw path; one never forwarded has no trace id', (t) => {
  const lines: Array<LogFields | undefined> = [];
  new AccessLog(1, (_m, f) => void lines.push(f)).record(req({ target: '', trace: '', project: null, policy: null }), 421);
  t.is(lines[0]!.path, '/raw');
  t.is(lines[0]!.trace_id, undefined);
  t.is(lines[0]!.project, undefined);
});

test('sampling: a rate of 0.25 logs the answers whose draw falls under it', (t) => {
  const draws = [0.1, 0.3, 0.24, 0.9];
  let i = 0;
  const lines: string[] = [];
  const a = new AccessLog(0.25, (m) => void lines.push(m), () => draws[i++]!);
  for (let k = 0; k < 4; k++) a.record(req(), 200);
  t.is(lines.length, 2);
});

test('--access-log: off (default), on, a rate in (0, 1]; anything else refused', (t) => {
  t.is(parseAccessLogRate(undefined), 0);
  t.is(parseAccessLogRate('off'), 0);
  t.is(parseAccessLogRate('on'), 1);
  t.is(parseAccessLogRate('0.01'), 0.01);
  t.is(parseAccessLogRate('1'), 1);
  for (const bad of ['0', '1.5', '-1', 'some', '']) t.is(parseAccessLogRate(bad), null, bad);
});

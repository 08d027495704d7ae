#!/usr/bin/env node
/**
 * The edge's own request path, in process, alone: what one protected GET with
 * a valid session costs the edge's JavaScript from the uWS handler to the end
 * of its response, and how much it allocates.
 *
 *   node dist/bench/edge-path.js [--rounds 5] [--batches 2000] [--in-flight 64] [--live on|off] [--metrics on|off|both]
 *                                [--otlp on|off|both [--otlp-sample 0.01]] [--step-up off|on|both] [--replica off|on]
 *
 * Runs the real `createFront` handler (route, session read from a real LMDB
 * store, authorize, the cached assertion, the forwarded head written into the
 * real tunnel client's HPACK encoder, each forwarded request registered with
 * and removed from continuous authorization's live registry, its tick
 * running, as in a worker — `--live off` leaves it out, to price it — the
 * response written back; each request counted by the worker's metrics as in
 * a worker — `--metrics off` leaves them out, `--metrics both` alternates
 * rounds with and without them in this one process and reports both, to
 * price them; `--otlp on` records the edge's spans (src/front/spans.ts) and
 * exports them in this process to an OTLP receiver in a child process, which
 * discards them, so encoding and sending count and receiving does not;
 * `--otlp both` alternates rounds with and without, the metrics as
 * `--metrics` says; the requests carry no `traceparent`, so `--otlp-sample`
 * is the share of them recorded;
 * `--step-up both` alternates rounds between the bench route as
 * it is, without `step_up`, and the same route with a `step_up` rule the
 * session satisfies — `{ max_age: 10m, factors: [webauthn, totp], device:
 * known }`, the costliest a rule gets, its device cookie read from the same
 * Cookie header — to price a rule where there is one; a route without one
 * pays only the rule's null test, which this cannot switch off;
 * one of `--metrics`, `--otlp` and `--step-up` alternates at a time) with
 * stand-ins for uWS's request and response objects, over an in-memory socket
 * pair to a canned HTTP/2 peer. The peer answers every request with the same
 * pre-encoded HEADERS and DATA frames and decodes nothing, so almost nothing
 * it does is counted against the edge (bench/micro.ts's "edge request path"
 * task, by contrast, includes a full HTTP/2 server as the peer). Not counted:
 * uWS's own parsing and socket writes, TLS, and the kernel.
 *
 * Reports, per request:
 * - CPU µs (process.cpuUsage over each round: user + system of this process,
 *   so other processes on the machine do not count, and the median of the
 *   rounds is the figure);
 * - bytes allocated, from V8's sampling heap profiler with objects collected
 *   by minor and major GCs included (so garbage counts, not only what
 *   survives), over one extra round, with the allocation sites that account
 *   for most of it. Strings made from uWS's header bytes (the stand-in request
 *   makes them as uWS does: flat latin1 strings per request) are reported
 *   apart, as "what uWS hands over".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Session } from 'node:inspector';
import { compileConfig, parseConfigYaml } from '../src/config/index.js';
import { Assertions, Signer } from '../src/identity/index.js';
import { Authenticator, findCookie, hashToken, newSessionToken } from '../src/session/index.js';
import { deviceIdOf, stepUpSatisfied } from '../src/authorize/index.js';
import { LiveRegistry, feedPoll } from '../src/authorize/index.js';
import { openStore } from '../src/store/index.js';
import { createFront, RequestMetrics, DecisionKind, EdgeSpans } from '../src/front/index.js';
import { SpanExporter, parseOtlpEndpoint } from '../src/runtime/index.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { makeSettings, type JournalLink, type StreamEntry } from '../src/replicate/index.js';

/** A stream in this process for `--replica on`: appends checked against the expected last sequence, as JetStream does. */
function memoryStream(): JournalLink {
  const entries: StreamEntry[] = [];
  return {
    append: async (data, _id, expectLast) => {
      if (expectLast !== entries.length) return 'conflict';
      entries.push({ seq: entries.length + 1, data });
      return entries.length;
    },
    readFrom: async (from, onBatch) => {
      if (entries.length >= from) await onBatch(entries.slice(from - 1));
    },
  };
}
import { methodClass } from '../src/front/metrics.js';
import { PoolRegistry } from '../src/tunnel/pools.js';
import { TunnelConnection } from '../src/tunnel/connection.js';
import { HpackEncoder } from '../wire/h2/hpack.js';
import { PREFACE, FRAME_HEADER_LENGTH, FrameType, Flag, writeFrameHeader } from '../wire/h2/frames.js';
import type { HttpRequest, HttpResponse } from '../native/uws.js';
import { BENCH_CONFIG } from './stack.js';
import { FakeRequest, FakeResponse, MemSocket } from './uws-standins.js';

const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
const BODY = Buffer.from('{"ok":true,"items":[{"id":1,"name":"alpha"},{"id":2,"name":"beta"}],"total":2,"page":1,"of":1,"pad":"xxxxxx"}');

/**
 * The Warpgate's role, canned: reads frame headers only, acknowledges
 * SETTINGS and PINGs, and answers each request (a HEADERS frame with
 * END_STREAM) with a HEADERS block encoded once (`:status 200`,
 * content-type, content-length; nothing added to the dynamic table) and one
 * DATA frame with END_STREAM. Nothing is decoded.
 */
class CannedPeer {
  private buf: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  private preface = true;
  private readonly block: Buffer<ArrayBufferLike>;

  constructor(private readonly socket: MemSocket) {
    const enc = new HpackEncoder(4096, { noIndex: ['content-type', 'content-length'], huffman: false });
    this.block = Buffer.from(enc.encode([':status', '200', 'content-type', 'application/json', 'content-length', String(BODY.length)]));
    socket.on('data', (c: Buffer) => this.onData(c));
    this.write(FrameType.SETTINGS, 0, 0, Buffer.alloc(0));
  }

  private write(type: number, flags: number, sid: number, payload: Buffer): void {
    const h = Buffer.alloc(FRAME_HEADER_LENGTH);
    writeFrameHeader(h, 0, payload.length, type, flags, sid);
    this.socket.write(Buffer.concat([h, payload]));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    if (this.preface) {
      if (this.buf.length < PREFACE.length) return;
      off = PREFACE.length;
      this.preface = false;
    }
    const out: Buffer[] = [];
    while (this.buf.length - off >= FRAME_HEADER_LENGTH) {
      const len = this.buf.readUIntBE(off, 3);
      if (this.buf.length - off < FRAME_HEADER_LENGTH + len) break;
      const type = this.buf[off + 3]!;
      const flags = this.buf[off + 4]!;
      const sid = this.buf.readUInt32BE(off + 5) & 0x7fffffff;
      if (type === FrameType.SETTINGS && (flags & Flag.ACK) === 0) out.push(frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(0)));
      else if (type === FrameType.PING && (flags & Flag.ACK) === 0) out.push(frame(FrameType.PING, Flag.ACK, 0, this.buf.subarray(off + 9, off + 17)));
      else if (type === FrameType.HEADERS && (flags & Flag.END_STREAM) !== 0) {
        out.push(frame(FrameType.HEADERS, Flag.END_HEADERS, sid, this.block), frame(FrameType.DATA, Flag.END_STREAM, sid, BODY));
      }
      off += FRAME_HEADER_LENGTH + len;
    }
    this.buf = this.buf.subarray(off);
    if (out.length > 0) this.socket.write(Buffer.concat(out));
  }
}

function frame(type: number, flags: number, sid: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_LENGTH + payload.length);
  writeFrameHeader(b, 0, payload.length, type, flags, sid);
  payload.copy(b, FRAME_HEADER_LENGTH);
  return b;
}

interface Sample {
  selfSize: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

function post<T>(s: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => s.post(method, params ?? {}, (err, r) => (err ? reject(err) : resolve(r as T))));
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({ options: { rounds: { type: 'string' }, batches: { type: 'string' }, 'in-flight': { type: 'string' }, live: { type: 'string' }, metrics: { type: 'string' }, otlp: { type: 'string' }, 'step-up': { type: 'string' }, replica: { type: 'string' }, 'otlp-sample': { type: 'string' } } });
  // `--replica on`: the store as a node of a replicated cluster opens it (every database routed through
  // the journal, src/replicate), its stream kept in this process: what replication costs the request path.
  const withReplica = v.replica === 'on';
  const withLive = (v.live ?? 'on') !== 'off';
  const metricsMode = v.metrics ?? 'on';
  if (metricsMode !== 'on' && metricsMode !== 'off' && metricsMode !== 'both') throw new Error('edge-path: --metrics on|off|both');
  const otlpMode = v.otlp ?? 'off';
  if (otlpMode !== 'on' && otlpMode !== 'off' && otlpMode !== 'both') throw new Error('edge-path: --otlp on|off|both');
  if (otlpMode === 'both' && metricsMode === 'both') throw new Error('edge-path: alternate one of --metrics and --otlp at a time');
  const otlpSample = Number(v['otlp-sample'] ?? '0.01');
  // What alternates between rounds (when anything does): the metrics or the spans.
  const stepUpMode = v['step-up'] ?? 'off';
  if (stepUpMode !== 'on' && stepUpMode !== 'off' && stepUpMode !== 'both') throw new Error('edge-path: --step-up on|off|both');
  if ([metricsMode, otlpMode, stepUpMode].filter((m) => m === 'both').length > 1) throw new Error('edge-path: one of --metrics, --otlp and --step-up alternates at a time');
  const varied = otlpMode === 'both' ? 'otlp' : stepUpMode === 'both' ? 'step_up' : 'metrics';
  const rounds = Number(v.rounds ?? 5);
  const batches = Number(v.batches ?? 2000);
  const inFlight = Number(v['in-flight'] ?? 64);
  const dir = mkdtempSync(join(tmpdir(), 'mezu-edge-path-'));
  const store = openStore(join(dir, 'data'), undefined, withReplica ? makeSettings(['nats://127.0.0.1:4222'], 'bench', 60_000) : null);
  if (withReplica) store.replica!.journal.attach(memoryStream());
  try {
    await Signer.ensureKey(store.signingKeys);
    const signer = new Signer(store.signingKeys, 'http://127.0.0.1:8080');
    signer.reload();
    const now = Date.now();
    await store.users.create({ id: 'usr_edge', directory: 'demo', email: 'edge@example.com', name: 'Edge', displayName: '', status: 'active', roles: ['viewer'], permissions: ['reports:read'], version: 1, createdAt: now, updatedAt: now, lastLoginAt: null });
    const token = newSessionToken();
    // A session that satisfies the step-up rule below (a passkey used now, on its known device); the same for both modes.
    const deviceId = 'bench-device-id-0123456';
    await store.sessions.create(hashToken(token), { id: 'ses_edge', principalType: 'user', userId: 'usr_edge', projectId: 'demo', createdAt: now, lastSeenAt: now, authTime: now, amr: ['pwd', 'hwk'], factorTimes: { pwd: now, hwk: now }, acr: 'mfa', deviceId, deviceKnown: true, assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
    const compile = (yaml: string) => {
      const parsed = parseConfigYaml(yaml);
      if (!parsed.ok) throw new Error('edge-path: bench config invalid');
      return compileConfig(parsed.config, 1);
    };
    const compiled = compile(BENCH_CONFIG);
    const stepUpRule = '{ path: /api/v1/*,   auth: required, step_up: { max_age: 10m, factors: [webauthn, totp], device: known } }';
    const withStepUp = compile(BENCH_CONFIG.replace('{ path: /api/v1/*,   auth: required }', stepUpRule));
    if (withStepUp.projects.get('demo')!.match('GET', '/api/v1/items').stepUp === null) throw new Error('edge-path: the step-up rule did not apply');
    const a = new MemSocket();
    const b = new MemSocket();
    a.peer = b;
    b.peer = a;
    new CannedPeer(b);
    const pools = new PoolRegistry();
    const conn = new TunnelConnection('demo', a, { pingIntervalMs: 0 }, () => undefined);
    conn.ready = true;
    pools.add(conn);
    const auth = new Authenticator(store);
    const log = (m: string) => process.stderr.write(`edge-path: ${m}\n`);
    const live = withLive ? new LiveRegistry({ auth, config: () => compiled, poll: feedPoll(store.changes), now: Date.now, audit: () => undefined, log }) : null;
    live?.start();
    const metrics = new RequestMetrics();
    // The OTLP receiver: a child process that takes each batch and discards it (its CPU is not ours).
    let receiver: ChildProcess | null = null;
    let exporter: SpanExporter | null = null;
    if (otlpMode !== 'off') {
      receiver = spawn(process.execPath, ['-e', "require('http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end('{}'))}).listen(0,'127.0.0.1',function(){process.stdout.write(this.address().port+'\\n')})"], { stdio: ['ignore', 'pipe', 'inherit'] });
      const port = await new Promise<number>((resolve) => receiver!.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
      exporter = new SpanExporter({ endpoint: parseOtlpEndpoint(`http://127.0.0.1:${port}`)!, service: 'mezusphere-edge', metricsPrefix: 'mezu_edge', log });
    }
    const front = (on: boolean) => {
      const withMetrics = varied === 'metrics' ? on : metricsMode === 'on';
      const withSpans = varied === 'otlp' ? on : otlpMode === 'on';
      const cfg = (varied === 'step_up' ? on : stepUpMode === 'on') ? withStepUp : compiled;
      return createFront({
        config: () => cfg,
        auth,
        assertions: new Assertions(store, signer),
        signer,
        scope: { pools, scheme: 'https', inflight: { n: 0 }, clients: new Map(), routes: new Map(), live, metrics: withMetrics ? metrics : null, spans: withSpans ? new EdgeSpans(exporter!, otlpSample) : null, log },
        cookieName: 'mezu_session',
        deviceCookieName: 'mezu_device',
        draining: { on: false },
        ...(withReplica ? { replica: { stale: false } } : {}),
        pages: null,
        log: (m) => process.stderr.write(`edge-path: ${m}\n`),
      });
    };
    // Modes in the order rounds take them: `both` alternates, so drift over the run hits both alike.
    const modes = varied === 'otlp' || varied === 'step_up' || metricsMode === 'both' ? [true, false] : [metricsMode === 'on'];
    const onLabel = varied === 'otlp' ? 'otlp on' : varied === 'step_up' ? 'step_up' : 'metrics on';
    const offLabel = varied === 'otlp' ? 'otlp off' : varied === 'step_up' ? 'no step_up' : 'metrics off';
    const handlers = modes.map((on) => front(on));
    let handle = handlers[0]!;
    // With --step-up, the device cookie is sent in every mode, so the requests are the same bytes and only the
    // rule differs; without, the request is the one earlier runs measured.
    const cookie = stepUpMode === 'off' ? `theme=dark; mezu_session=${token}` : `theme=dark; mezu_session=${token}; mezu_device=${deviceId}.bench-mac-not-checked-on-path`;
    const req = new FakeRequest(['host', '127.0.0.1', 'user-agent', USER_AGENT, 'accept', 'application/json', 'accept-language', 'en-US,en;q=0.9', 'accept-encoding', 'gzip, deflate, br', 'cookie', cookie]) as unknown as HttpRequest;
    const batch = (): Promise<void> =>
      new Promise((resolve, reject) => {
        let left = inFlight;
        let bad = 0;
        const done = (ok: boolean) => {
          if (!ok) bad++;
          if (--left === 0) (bad === 0 ? resolve() : reject(new Error(`edge-path: ${bad} requests did not get a 200`)));
        };
        for (let k = 0; k < inFlight; k++) handle(new FakeResponse(done) as unknown as HttpResponse, req);
      });
    // Warm: the first request mints the assertion and writes it back; then let the JIT settle.
    for (const h of handlers) {
      handle = h;
      await batch();
      await new Promise((r) => setTimeout(r, 200));
      for (let i = 0; i < batches; i++) await batch();
    }

    // Per mode: CPU and wall µs/request of each round.
    const cpuBy = modes.map(() => [] as number[]);
    const wallBy = modes.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      // ABBA: which mode goes first alternates too.
      for (let j = 0; j < modes.length; j++) {
        const k = r % 2 === 0 ? j : modes.length - 1 - j;
        handle = handlers[k]!;
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < batches; i++) await batch();
        const c = process.cpuUsage(c0);
        wallBy[k]!.push(Number(process.hrtime.bigint() - t0) / 1000 / (batches * inFlight));
        cpuBy[k]!.push((c.user + c.system) / (batches * inFlight));
      }
    }
    handle = handlers[0]!;
    const cpu = cpuBy[0]!;
    const wall = wallBy[0]!;

    // Allocation: the sampling heap profiler, garbage included.
    const session = new Session();
    session.connect();
    const allocBatches = Math.min(batches, 500);
    await post(session, 'HeapProfiler.enable');
    await post(session, 'HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    for (let i = 0; i < allocBatches; i++) await batch();
    const { profile } = await post<{ profile: { head: { callFrame: Sample['callFrame']; selfSize: number; children: unknown[] }; samples: Array<{ size: number; nodeId: number }> } }>(session, 'HeapProfiler.stopSampling');
    session.disconnect();
    const bySite = new Map<string, number>();
    let total = 0;
    const walk = (n: { callFrame: Sample['callFrame']; selfSize: number; children: unknown[] }) => {
      if (n.selfSize > 0) {
        const f = n.callFrame;
        const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/dist\//, '').replace(/^node:internal\//, 'node:')}:${f.lineNumber + 1}`;
        bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
        total += n.selfSize;
      }
      for (const c of n.children) walk(c as typeof n);
    };
    walk(profile.head);
    const reqs = allocBatches * inFlight;
    // Strings made by the stand-in request: what uWS hands over per request.
    let fromUws = 0;
    for (const [k, bytes] of bySite) if (k.startsWith('forEach bench/uws-standins.js') || k.startsWith('toString node:buffer') || k.startsWith('slice ') || k.startsWith('latin1Slice')) fromUws += bytes;
    const medianOf = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    const median = medianOf(cpu);
    const out = [
      `edge request path in process (createFront → TunnelConnection → canned HTTP/2 peer), ${inFlight} in flight, ${rounds} rounds × ${batches * inFlight} requests, live registry ${withLive ? 'on' : 'off'}, metrics ${metricsMode === 'both' ? 'on and off, rounds alternating' : metricsMode}, otlp ${otlpMode === 'both' ? 'on and off, rounds alternating' : otlpMode}${otlpMode === 'off' ? '' : ` (new traces sampled at ${otlpSample})`}, step_up ${stepUpMode === 'both' ? 'with and without, rounds alternating' : stepUpMode}`,
      `  CPU µs/request${modes.length > 1 ? ` (${onLabel})` : ''}: ${cpu.map((x) => x.toFixed(2)).join(' ')}  (median ${median.toFixed(2)})`,
      `  wall µs/request${modes.length > 1 ? ` (${onLabel})` : ''}: ${wall.map((x) => x.toFixed(2)).join(' ')}`,
    ];
    if (exporter !== null) {
      const st = exporter.stats();
      out.push(`  spans: ${st.exported} exported, ${st.droppedFull} dropped (queue full), ${st.droppedFailed} dropped (export failed), ${st.queued} queued at the end`);
    }
    if (modes.length > 1 && varied === 'otlp') {
      const off = cpuBy[1]!;
      const pairs = cpu.map((x, i) => x - off[i]!);
      out.push(
        `  CPU µs/request (${offLabel}): ${off.map((x) => x.toFixed(2)).join(' ')}  (median ${medianOf(off).toFixed(2)})`,
        `  wall µs/request (${offLabel}): ${wallBy[1]!.map((x) => x.toFixed(2)).join(' ')}`,
        `  on − off, per round pair: ${pairs.map((x) => (x >= 0 ? '+' : '') + x.toFixed(2)).join(' ')}  (median ${medianOf(pairs).toFixed(2)}; difference of medians ${(median - medianOf(off)).toFixed(2)})`,
      );
    }
    if (modes.length > 1 && varied === 'step_up') {
      const off = cpuBy[1]!;
      const pairs = cpu.map((x, i) => x - off[i]!);
      out.push(
        `  CPU µs/request (${offLabel}): ${off.map((x) => x.toFixed(2)).join(' ')}  (median ${medianOf(off).toFixed(2)})`,
        `  wall µs/request (${offLabel}): ${wallBy[1]!.map((x) => x.toFixed(2)).join(' ')}`,
        `  step_up − none, per round pair: ${pairs.map((x) => (x >= 0 ? '+' : '') + x.toFixed(2)).join(' ')}  (median ${medianOf(pairs).toFixed(2)}; difference of medians ${(median - medianOf(off)).toFixed(2)})`,
      );
      // The check alone, as handler.ts makes it, without the rest of the path: the rule with a device
      // (the device cookie found in the Cookie header, the session's factor times), and a route
      // without a rule (its null test), which the whole-path rounds cannot tell apart from noise.
      const session = store.sessions.getForRequest(hashToken(token))!;
      const header = cookie;
      const ruleOn = withStepUp.projects.get('demo')!.match('GET', '/api/v1/items');
      const ruleOff = compiled.projects.get('demo')!.match('GET', '/api/v1/items');
      const n = 2_000_000;
      const alone = (policy: typeof ruleOn): number[] => {
        const per: number[] = [];
        let ok = 0;
        for (let r = 0; r < rounds; r++) {
          const c0 = process.cpuUsage();
          for (let i = 0; i < n; i++) {
            const su = policy.stepUp;
            if (su === null || stepUpSatisfied(su, session, now, su.device ? deviceIdOf(findCookie(header, 'mezu_device')) : '')) ok++;
          }
          const c = process.cpuUsage(c0);
          per.push(((c.user + c.system) * 1000) / n);
        }
        if (ok !== rounds * n) throw new Error('edge-path: the step-up check refused the bench session');
        return per;
      };
      const withRule = alone(ruleOn);
      const without = alone(ruleOff);
      out.push(
        `  the check alone, rule with factors and device: ${withRule.map((x) => x.toFixed(0)).join(' ')} CPU-ns/request (median ${medianOf(withRule).toFixed(0)})`,
        `  the check alone, route without step_up (the null test): ${without.map((x) => x.toFixed(1)).join(' ')} CPU-ns/request (median ${medianOf(without).toFixed(1)}; ${n} requests a round)`,
      );
    }
    if (modes.length > 1 && varied === 'metrics') {
      // The counting calls alone, as one forwarded request makes them (the rule's slot, the allowed
      // decision, the four performance.now() reads — head, tunnel start, response head, end — the
      // tunnel wait and the count), without the rest of the path: a figure the round-to-round noise
      // of the whole path cannot hide.
      const policy = compiled.projects.get('demo')!.match('GET', '/api/v1/items');
      const project = compiled.projects.get('demo')!;
      const alone: number[] = [];
      const n = 2_000_000;
      let sink = 0;
      for (let r = 0; r < rounds; r++) {
        const c0 = process.cpuUsage();
        for (let i = 0; i < n; i++) {
          const started = performance.now();
          const slot = metrics.slotOf(compiled, project, policy);
          metrics.decision(slot, DecisionKind.AllowedSession);
          const sent = performance.now();
          metrics.tunnelWait(slot, sent);
          metrics.count(slot, methodClass('GET'), 200, started);
          sink += slot;
        }
        const c = process.cpuUsage(c0);
        alone.push(((c.user + c.system) * 1000) / n);
      }
      out.push(`  the counting calls alone: ${alone.map((x) => x.toFixed(0)).join(' ')} CPU-ns/request (median ${medianOf(alone).toFixed(0)}; ${sink > 0 ? n : 0} requests a round)`);
      const off = cpuBy[1]!;
      const pairs = cpu.map((x, i) => x - off[i]!);
      out.push(
        `  CPU µs/request (metrics off): ${off.map((x) => x.toFixed(2)).join(' ')}  (median ${medianOf(off).toFixed(2)})`,
        `  wall µs/request (metrics off): ${wallBy[1]!.map((x) => x.toFixed(2)).join(' ')}`,
        `  on − off, per round pair: ${pairs.map((x) => (x >= 0 ? '+' : '') + x.toFixed(2)).join(' ')}  (median ${medianOf(pairs).toFixed(2)}; difference of medians ${(median - medianOf(off)).toFixed(2)})`,
      );
    }
    out.push(
      `  allocated per request: ${(total / reqs).toFixed(0)} B, of which ${(fromUws / reqs).toFixed(0)} B are the header strings uWS hands over (sampling heap profiler, interval 256 B, garbage included, ${reqs} requests)`,
      `  top allocation sites (B/request)${modes.length > 1 ? `, ${onLabel}` : ''}:`,
    );
    for (const [k, bytes] of [...bySite].sort((x, y) => y[1] - x[1]).slice(0, 15)) out.push(`    ${(bytes / reqs).toFixed(0).padStart(6)}  ${k}`);
    process.stdout.write(out.join('\n') + '\n');
    conn.close(false);
    live?.stop();
    await exporter?.close();
    if (receiver !== null && receiver.pid !== undefined) process.kill(receiver.pid, 'SIGTERM');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`edge-path: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);

#!/usr/bin/env node
/**
 * What continuous authorization's tick costs an edge worker with many
 * streams open (src/authorize/live.ts): one walk of the open streams every
 * 250 ms, comparing each one's deadline and idle time, with no change in the
 * feed (the common case) and with one session named by it.
 *
 *   node dist/bench/live-tick.js [--streams 1000,10000,100000] [--ticks 200]
 *
 * Streams are plain objects of the registry's shape, half WebSockets, each
 * with its own session; the store is not read (no change names them), so
 * this is the walk alone. Reports µs per tick and the CPU share at 4 ticks
 * a second.
 */
import { parseArgs } from 'node:util';
import { LiveRegistry, type LiveStream } from '../src/authorize/index.js';
import { compileConfig, parseConfigYaml } from '../src/config/index.js';
import type { Authenticator, Principal } from '../src/session/index.js';

const CONFIG = `projects:
  - id: demo
    hosts: [localhost]
    upstream: demo
    routes:
      - { path: /api/v1/*, auth: required }
`;

function main(): void {
  const { values: v } = parseArgs({ options: { streams: { type: 'string' }, ticks: { type: 'string' } } });
  const counts = (v.streams ?? '1000,10000,100000').split(',').map(Number);
  const ticks = Number(v.ticks ?? 200);
  const parsed = parseConfigYaml(CONFIG);
  if (!parsed.ok) throw new Error('live-tick: config invalid');
  const cfg = compileConfig(parsed.config, 1);
  const now = Date.now();
  let changed: ReadonlySet<string> | null = null;
  const auth = { recheck: (p: Principal) => p } as unknown as Authenticator;
  for (const n of counts) {
    const reg = new LiveRegistry({ auth, config: () => cfg, poll: () => changed, now: () => now, audit: () => undefined, log: () => undefined });
    for (let i = 0; i < n; i++) {
      const ws = i % 2 === 0;
      const principal = { credential: `c${i}`, key: null, account: null, session: { id: `s${i}`, createdAt: now, lastSeenAt: now }, user: { id: `u${i}` } } as unknown as Principal;
      const s: LiveStream = {
        livePrev: null, liveNext: null, principal, liveProject: 'demo', liveMethod: 'GET', liveKey: '/api/v1/ws', liveDeadline: 0, activeAt: now,
        isWebSocket: ws, lastMessageAt: now, liveIdleMs: ws ? 300_000 : Infinity, liveRequestId: `r${i}`, liveClient: '127.0.0.1',
        revoke: () => undefined,
      };
      reg.add(s);
    }
    reg.tick(); // the first tick works out each stream's deadline
    const line: string[] = [];
    for (const c of [null, new Set(['session:c1'])]) {
      changed = c;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ticks; i++) reg.tick();
      const us = Number(process.hrtime.bigint() - t0) / 1000 / ticks;
      line.push(`${c === null ? 'no change' : 'one session changed'}: ${us.toFixed(0)} µs/tick (${((us * 4) / 10_000).toFixed(2)} % of a core)`);
    }
    process.stdout.write(`${String(n).padStart(7)} open streams — ${line.join('; ')}\n`);
  }
}

main();

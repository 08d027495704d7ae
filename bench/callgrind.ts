#!/usr/bin/env node
/**
 * Instructions per request of the edge worker or of the Warpgate, counted by
 * valgrind's callgrind under a fixed load: a figure that does not move with
 * whatever else the machine is doing (the same total twice, give or take the
 * JIT's timing), unlike CPU time on two shared cores.
 *
 *   node dist/bench/callgrind.js [--target edge|warpgate] [--root DIR] [--warm 3000] [--count 10000]
 *
 * Starts the bench origin, the edge (one worker) and a Warpgate from the tree
 * at --root (default: this one; give another built checkout for a
 * before/after), the target under `valgrind --tool=callgrind`, then sends
 * `--warm` protected GETs with h2load (HTTP/1.1, 8 connections, a
 * browser-like head with the session cookie), dumps the counters, sends
 * `--count` more and dumps again: the second dump divided by `--count` is
 * the figure. Only user-space instructions are counted (not the kernel's), and
 * valgrind runs the target ~50× slower and on one thread at a time, so this
 * compares builds; it is not the CPU time of a request. Needs valgrind and
 * h2load (Debian: valgrind, nghttp2-client).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_CONFIG, BENCH_EMAIL, ROOT } from './stack.js';

const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

function usage(msg: string): never {
  process.stderr.write(`bench: ${msg}\nusage: node dist/bench/callgrind.js [--target edge|warpgate] [--root DIR] [--warm N (default 3000)] [--count N (default 10000)]\n`);
  process.exit(2);
}

interface Child {
  proc: ChildProcess;
  output: () => string;
  wait: (re: RegExp, ms: number) => Promise<RegExpExecArray>;
}

function start(cmd: string, args: string[], cwd: string): Child {
  const proc = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  const waiters: Array<() => void> = [];
  const on = (d: Buffer) => {
    buf += d.toString();
    if (buf.length > 1_000_000) buf = buf.slice(-500_000);
    for (const w of waiters) w();
  };
  proc.stdout!.on('data', on);
  proc.stderr!.on('data', on);
  return {
    proc,
    output: () => buf,
    wait: (re, ms) =>
      new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`bench: ${cmd} ${args.slice(0, 3).join(' ')}: no ${re} within ${ms} ms:\n${buf.slice(-2000)}`)), ms);
        const check = () => {
          const m = re.exec(buf);
          if (m !== null) {
            clearTimeout(t);
            res(m);
          }
        };
        waiters.push(check);
        check();
      }),
  };
}

async function main(): Promise<void> {
  let v;
  try {
    v = parseArgs({ options: { target: { type: 'string' }, root: { type: 'string' }, warm: { type: 'string' }, count: { type: 'string' } } }).values;
  } catch (err) {
    usage((err as Error).message);
  }
  const target = v.target ?? 'edge';
  if (target !== 'edge' && target !== 'warpgate') usage('--target is edge or warpgate');
  const root = resolve(v.root ?? ROOT);
  const warm = Number(v.warm ?? 3000);
  const count = Number(v.count ?? 10_000);
  if (!Number.isInteger(warm) || !Number.isInteger(count) || warm < 100 || count < 1000 || count > 1_000_000) usage('--warm ≥ 100 and --count from 1000 to 1000000');
  const data = mkdtempSync(join(tmpdir(), 'mezu-cg-'));
  const out = mkdtempSync(join(tmpdir(), 'mezu-cg-out-'));
  const children: Child[] = [];
  const cli = (a: string[]) => execFileSync(process.execPath, [join(root, 'dist/src/cli/main.js'), ...a, '--data', data], { cwd: root, encoding: 'utf8', timeout: 60_000 }).trim();
  const valgrind = (args: string[]) => ['valgrind', ['--tool=callgrind', '--trace-children=yes', `--callgrind-out-file=${join(out, 'cg.%p')}`, process.execPath, ...args]] as const;
  try {
    cli(['pki', 'init', '--pool', 'demo']);
    writeFileSync(join(data, 'bench.yaml'), BENCH_CONFIG);
    cli(['apply', '-f', join(data, 'bench.yaml')]);
    cli(['users', 'add', '--project', 'demo', '--email', BENCH_EMAIL]);
    const token = cli(['sessions', 'create', '--project', 'demo', '--email', BENCH_EMAIL]);
    const origin = start(process.execPath, [join(root, 'dist/bench/bench-origin.js'), '--port', '0'], root);
    children.push(origin);
    const originPort = (await origin.wait(/"port":(\d+)/, 20_000))[1]!;
    const edgeArgs = [join(root, 'dist/src/cli/main.js'), 'edge', '--data', data, '--host', '127.0.0.1', '--port', '0', '--tunnel-port', '0', '--workers', '1'];
    const [vg, vgArgs] = valgrind(edgeArgs);
    const edge = target === 'edge' ? start(vg, [...vgArgs], root) : start(process.execPath, edgeArgs, root);
    children.push(edge);
    const ready = JSON.parse((await edge.wait(/\{"event":"ready".*\}/, 300_000))[0]) as { port: number; tunnelPort: number; workers: number[] };
    const wgArgs = [join(root, 'dist/warpgate/main.js'), '--edge', `127.0.0.1:${ready.tunnelPort}`, '--origin', `http://127.0.0.1:${originPort}`, '--pki-dir', join(data, 'pki'), '--pool', 'demo'];
    const [wvg, wvgArgs] = valgrind(wgArgs);
    const wg = target === 'warpgate' ? start(wvg, [...wvgArgs], root) : start(process.execPath, wgArgs, root);
    children.push(wg);
    await wg.wait(/tunnel up to edge worker/, 300_000);
    await new Promise((r) => setTimeout(r, 3000));
    const url = `http://127.0.0.1:${ready.port}/api/v1/items`;
    const load = (n: number) => {
      const o = execFileSync('h2load', ['--h1', '-n', String(n), '-c', '8', '-H', `cookie: theme=dark; mezu_session=${token}`, '-H', `user-agent: ${UA}`, '-H', 'accept: application/json', '-H', 'accept-language: en-US,en;q=0.9', url], { encoding: 'utf8', timeout: 900_000 });
      const ok = Number(/status codes: (\d+) 2xx/.exec(o)?.[1] ?? 0);
      if (ok !== n) throw new Error(`bench: ${ok} of ${n} requests got a 2xx:\n${o}`);
    };
    const pid = target === 'edge' ? ready.workers[0]! : wg.proc.pid!;
    const dump = () => execFileSync('callgrind_control', ['--dump', String(pid)], { encoding: 'utf8', timeout: 120_000 });
    const lastDump = () => {
      const files = readdirSync(out).filter((f) => f.startsWith(`cg.${pid}.`)).sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
      const text = readFileSync(join(out, files[files.length - 1]!), 'utf8');
      return Number(/^(?:summary|totals): (\d+)/m.exec(text)?.[1] ?? NaN);
    };
    load(warm);
    dump();
    load(count);
    dump();
    const per = lastDump() / count;
    process.stdout.write(`${target} (${root}): ${Math.round(per)} instructions per protected GET (callgrind, user space, ${count} requests after ${warm} of warm-up)\n`);
  } finally {
    for (const c of children.reverse()) c.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);

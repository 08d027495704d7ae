/**
 * uWS sends in pieces under 16 KiB (native/uws.ts, WS_SEND_MAX): uWS 20.30's
 * shortcut for a larger send can drop the payload when the kernel takes none
 * of it. Checked on a recording stand-in for the socket: no single send
 * reaches 16 KiB, and the frames, read in order, make the same message
 * (first piece with the message's type, continuations, FIN on the last).
 * And no source but native/uws.ts sends on a uWS WebSocket itself.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import * as ts from 'typescript';
import { WS_SEND_MAX, sendMessage, sendPiece, type WebSocket } from '../../../native/uws.js';

interface Call {
  kind: 'send' | 'first' | 'fragment' | 'last';
  bytes: Buffer;
  binary: boolean | undefined;
}

function recorder(): { ws: WebSocket<unknown>; calls: Call[] } {
  const calls: Call[] = [];
  const rec = (kind: Call['kind']) => (m: Uint8Array, binary?: boolean) => {
    calls.push({ kind, bytes: Buffer.from(m), binary });
    return 1;
  };
  const ws = { send: rec('send'), sendFirstFragment: rec('first'), sendFragment: rec('fragment'), sendLastFragment: rec('last') } as unknown as WebSocket<unknown>;
  return { ws, calls };
}

/** Reads the calls as a receiver reads frames: whole messages, with their type; throws on a broken sequence. */
function messages(calls: Call[]): Array<{ binary: boolean; bytes: Buffer }> {
  const out: Array<{ binary: boolean; bytes: Buffer }> = [];
  let open: { binary: boolean; parts: Buffer[] } | null = null;
  for (const c of calls) {
    if (c.bytes.length >= 16 * 1024) throw new Error(`a send of ${c.bytes.length} bytes`);
    if (c.kind === 'send' || c.kind === 'first') {
      if (open !== null) throw new Error('a new message inside one');
      if (c.kind === 'send') out.push({ binary: c.binary === true, bytes: c.bytes });
      else open = { binary: c.binary === true, parts: [c.bytes] };
    } else {
      if (open === null) throw new Error('a continuation outside a message');
      open.parts.push(c.bytes);
      if (c.kind === 'last') {
        out.push({ binary: open.binary, bytes: Buffer.concat(open.parts) });
        open = null;
      }
    }
  }
  if (open !== null) throw new Error('a message left open');
  return out;
}

const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff));

test('whole messages of every size around the limit arrive whole, in sends under 16 KiB', (t) => {
  for (const n of [0, 1, WS_SEND_MAX - 1, WS_SEND_MAX, WS_SEND_MAX + 1, 16 * 1024, 64 * 1024, 1024 * 1024 + 3]) {
    const { ws, calls } = recorder();
    const m = pattern(n);
    sendMessage(ws, m, true);
    const got = messages(calls);
    t.is(got.length, 1, `${n} bytes: one message`);
    t.true(got[0]!.binary);
    t.true(got[0]!.bytes.equals(m), `${n} bytes: the same bytes`);
    t.is(calls.length, Math.max(1, Math.ceil(n / WS_SEND_MAX)), `${n} bytes: as few sends as the limit allows`);
  }
  t.true(WS_SEND_MAX + 10 <= 16 * 1024, 'a piece and its largest server header fit the 16 KiB cork buffer');
});

test('a text message keeps its type on the first fragment', (t) => {
  const { ws, calls } = recorder();
  const text = 'é'.repeat(20_000); // 40,000 bytes: split inside a UTF-8 sequence is allowed between fragments
  sendMessage(ws, text, false);
  const got = messages(calls);
  t.is(got.length, 1);
  t.false(got[0]!.binary);
  t.is(got[0]!.bytes.toString('utf8'), text);
});

test('pieces of a streamed message (first, middle, last, of any size) make one message', (t) => {
  const { ws, calls } = recorder();
  const parts = [pattern(40_000), pattern(5), Buffer.alloc(0), pattern(70_000), pattern(16_384)];
  parts.forEach((p, i) => sendPiece(ws, p, true, i === 0, i === parts.length - 1));
  sendPiece(ws, pattern(3), false, true, true);
  const got = messages(calls);
  t.is(got.length, 2);
  t.true(got[0]!.bytes.equals(Buffer.concat(parts)));
  t.true(got[0]!.binary);
  t.deepEqual(got[1], { binary: false, bytes: pattern(3) });
});

const ROOT = resolve(__dirname, '../../../..');
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

test('only native/uws.ts sends on a uWS WebSocket: the edge and the demo origin go through sendPiece/sendMessage', (t) => {
  // Fragment sends exist only on uWS sockets; `ws.send(` is how this code names a uWS socket's send
  // (the `ws` package's clients live in bench/ and test/, not read here). Calls are read from the
  // syntax tree, so the demo page's script inside a string does not count.
  const found: string[] = [];
  for (const dir of ['src', 'scripts', 'warpgate', 'wire']) {
    for (const file of sources(join(ROOT, dir))) {
      const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
      const visit = (n: ts.Node): void => {
        if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression)) {
          const name = n.expression.name.text;
          const recv = n.expression.expression.getText(sf);
          if (/^send(First|Last)?Fragment$/.test(name) || (name === 'send' && /(^|\.)ws$/.test(recv))) {
            found.push(`${relative(ROOT, file)}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1} ${recv}.${name}(…)`);
          }
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
  }
  t.deepEqual(found, []);
});

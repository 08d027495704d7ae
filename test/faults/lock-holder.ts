#!/usr/bin/env node
/**
 * Test helper (test/faults/store.test.ts): opens the store under DATA and
 * holds LMDB's write lock inside a synchronous write transaction until it is
 * killed. Prints `locked` on stdout once it holds it.
 *
 *   node dist/test/faults/lock-holder.js DATA
 */
import { openEnv } from '../../native/lmdb.js';

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write('usage: lock-holder DATA\n');
  process.exit(2);
}
const root = openEnv({ path: `${dir}/store` });
const db = root.openDB<string, string>({ name: 'faults', cache: false });
const sleeper = new Int32Array(new SharedArrayBuffer(4));
root.transactionSync(() => {
  db.putSync('held-by', String(process.pid));
  // Pipes are written synchronously on Linux: the parent sees this while the lock is held.
  process.stdout.write('locked\n');
  for (;;) Atomics.wait(sleeper, 0, 0, 60_000);
});

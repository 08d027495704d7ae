/**
 * RecordReader (native/lmdb.ts) serves the request path's session, user and
 * key reads: it reads the stored bytes on every call and skips only the
 * decode when they are unchanged. What must hold is that it is never a cache
 * of what is stored: every write, removal or rewrite is seen on the next
 * read, and the shared (reused) records cannot be modified by a caller.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, openEnv, RecordReader } from '../../../native/lmdb.js';

interface Rec {
  id: string;
  status: string;
  roles: string[];
  version: number;
  assertion: string | null;
}

function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-reader-'));
  const root = openEnv({ path: dir });
  const db = openDb<Rec>(root, 'records');
  t.teardown(async () => {
    await root.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { db, reader: new RecordReader<Rec>(db) };
}

const rec = (over: Partial<Rec> = {}): Rec => ({ id: 'usr_1', status: 'active', roles: ['admin'], version: 1, assertion: 'eyJ' + 'a'.repeat(550), ...over });

test('unchanged bytes return the same frozen record; every write is seen on the next read', async (t) => {
  const { db, reader } = setup(t);
  t.is(reader.get('k'), undefined);
  await db.put('k', rec());
  const a = reader.get('k')!;
  t.deepEqual(a, rec());
  t.is(reader.get('k'), a, 'same bytes: the decoded record is reused');
  t.true(Object.isFrozen(a));
  t.true(Object.isFrozen(a.roles));
  t.throws(() => (a.roles as string[]).push('x'));

  // A status change of the same length: one field's bytes change, the record's size does not.
  await db.put('k', rec({ status: 'frozen' }));
  const b = reader.get('k')!;
  t.is(b.status, 'frozen');
  t.is(a.status, 'active', 'the record handed out before is untouched');
  // A role change of the same size, then a version bump.
  await db.put('k', rec({ status: 'frozen', roles: ['owner'] }));
  t.deepEqual(reader.get('k')!.roles, ['owner']);
  await db.put('k', rec({ version: 2 }));
  t.is(reader.get('k')!.version, 2);

  // Removed: gone at once, and a later write of the very same bytes is read again.
  await db.remove('k');
  t.is(reader.get('k'), undefined);
  await db.put('k', rec({ version: 2 }));
  t.is(reader.get('k')!.version, 2);
});

test('keys are independent, and another handle\'s writes are seen (what another worker writes)', async (t) => {
  const { db, reader } = setup(t);
  await db.put('a', rec({ id: 'a' }));
  await db.put('b', rec({ id: 'b' }));
  t.is(reader.get('a')!.id, 'a');
  t.is(reader.get('b')!.id, 'b');
  t.is(reader.get('a')!.id, 'a');
  // A second reader and a plain get on the same database agree with it after a write.
  const other = new RecordReader<Rec>(db);
  await db.put('a', rec({ id: 'a', status: 'deactivated' }));
  t.is(reader.get('a')!.status, 'deactivated');
  t.is(other.get('a')!.status, 'deactivated');
  t.is(db.get('a')!.status, 'deactivated');
  // A plain get still hands out a mutable copy for callers that edit records.
  t.false(Object.isFrozen(db.get('a')));
});

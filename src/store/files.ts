/**
 * The store's files: the modes and owner every open enforces, and the
 * compacting copy that drops free pages (`mezusphere store compact`).
 */
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RootDatabase } from '../../native/lmdb.js';
import { MezuError } from '../errors/index.js';

/**
 * File modes and owners of the data directory, the store directory and the
 * LMDB files, on every open: directories 0700, files 0600, whatever the
 * umask or an older version left (a pre-existing `store/` of mode 0755 used
 * to get 0644 database files). A path owned by another user is refused: this
 * process could not make it private, and that user can read every secret in it.
 */
export function securePaths(paths: Array<[string, number]>): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  for (const [path, mode] of paths) {
    if (!existsSync(path)) continue;
    const st = statSync(path);
    if (uid !== null && st.uid !== uid) {
      throw new MezuError('MEZU_STORE_NOT_OWNED', `store: ${path} belongs to uid ${st.uid}, not to uid ${uid} running this process; run as its owner, or \`chown -R\` the data directory to this user`);
    }
    if ((st.mode & 0o777) !== mode) chmodSync(path, mode);
  }
}

/**
 * LMDB never overwrites a page in place: a value replaced by its sealed form
 * (the migration of an older store) or deleted stays in the file's free pages
 * until a later write reuses them. A compacting copy (mdb_env_copy2 with
 * MDB_CP_COMPACT) holds only live pages; it replaces data.mdb by a rename.
 * Another process with the store open would go on using the old file and its
 * writes would be lost, so this runs only when no other process is listed in
 * the environment's reader table (every process that opened the store has
 * read from it: the migration check reads).
 */
export async function compact(root: RootDatabase, path: string): Promise<{ before: number; after: number }> {
  root.readerCheck();
  const others = new Set<number>();
  for (const line of root.readerList().split('\n')) {
    const m = /^\s*(\d+)\s/.exec(line);
    if (m !== null && Number(m[1]) !== process.pid) others.add(Number(m[1]));
  }
  if (others.size > 0) {
    await root.close();
    throw new MezuError('MEZU_STORE_UNAVAILABLE', `store: processes ${[...others].join(', ')} have ${path} open; stop the edge, the Console and other commands first`);
  }
  const file = join(path, 'data.mdb');
  // The copy of a directory-mode environment is a directory holding its data.mdb.
  const tmpDir = join(path, 'compact.tmp');
  const tmp = join(tmpDir, 'data.mdb');
  const before = statSync(file).size;
  rmSync(tmpDir, { recursive: true, force: true });
  mkdirSync(tmpDir, { mode: 0o700 });
  try {
    await root.backup(tmpDir, true);
  } finally {
    await root.close();
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  rmSync(tmpDir, { recursive: true, force: true });
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { before, after: statSync(file).size };
}

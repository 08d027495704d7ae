/**
 * Secrets inside the store are sealed at rest: the assertion signing keys,
 * each project's tunnel CA key, the CSRF secrets and the development outbox's
 * mail (which carries live reset and signup links). A copy of `data.mdb`
 * alone (a backup, a disk image, a file left readable) then leaks none of
 * them.
 *
 * Sealing is libsodium's secretbox (native/sodium.ts) under the **store key**,
 * kept apart from the LMDB files: `MEZU_STORE_KEY` in the environment when it
 * is set, else the file `DATA/store.key` (0600, created with a fresh key on
 * the first open of a store that holds nothing sealed). Either holds one key
 * per line (file) or comma-separated (environment), base64url of 32 bytes: the
 * first seals, every one opens. Rotation (`mezusphere store-key rotate`)
 * writes the new key first and the old one after it, re-seals every value,
 * then drops the old key; a rotation interrupted before that is finished by
 * the next open.
 *
 * A sealed value is text: `mzs1.<key id>.<base64url(nonce || MAC || ciphertext)>`,
 * so it sits in the same string field the plain value had. The key id (first
 * 8 bytes of a SHA-256 of the key) says which key opens it without trying each.
 * A value without the prefix is a plain one from a store written before
 * sealing: it is read as it is and sealed by the migration at the next open.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { secretboxKey, secretboxOpen, secretboxSeal, SECRETBOX_KEY_BYTES } from '../../native/sodium.js';
import { MezuError } from '../errors/index.js';

/** The environment variable that holds the store key(s), when the key is not kept in a file. */
export const ENV_STORE_KEY = 'MEZU_STORE_KEY';
/** The key file's name in the data directory (outside `store/`, so copying the LMDB files does not copy it). */
export const STORE_KEY_FILE = 'store.key';

const PREFIX = 'mzs1.';
const KEY_RE = /^[A-Za-z0-9_-]{43}$/;

interface Key {
  id: string;
  key: Buffer;
}

export type KeySource = { kind: 'env' } | { kind: 'file'; path: string };

/** True when a stored value is sealed (whatever the key). */
export function isSealed(v: string): boolean {
  return v.startsWith(PREFIX);
}

export function keyId(key: Uint8Array): string {
  return createHash('sha256').update('mezusphere store key\u0000').update(key).digest('hex').slice(0, 16);
}

function parseKeys(text: string, where: string): Key[] {
  const out: Key[] = [];
  for (const raw of text.split(/[\n,]/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!KEY_RE.test(line)) throw new MezuError('MEZU_STORE_KEY_INVALID', `store: ${where} holds something that is not a store key (base64url of ${SECRETBOX_KEY_BYTES} bytes, one per line)`);
    const key = Buffer.from(line, 'base64url');
    out.push({ id: keyId(key), key });
  }
  if (out.length === 0) throw new MezuError('MEZU_STORE_KEY_INVALID', `store: ${where} holds no store key`);
  return out;
}

function keyFileText(keys: readonly Buffer[]): string {
  return (
    '# Mezusphere store key: seals the private keys and secrets kept in store/ (libsodium secretbox).\n' +
    '# Keep this file 0600 and back it up apart from the store: without it the sealed values cannot be read.\n' +
    '# The first key seals; any further key only opens values sealed before a rotation.\n' +
    keys.map((k) => k.toString('base64url')).join('\n') +
    '\n'
  );
}

/**
 * Writes the key file whole or not at all: a temporary 0600 file, synced,
 * then renamed over the old one (and the directory synced), so a crash
 * leaves either the old file or the new one, never half of one.
 */
export function writeKeyFile(path: string, keys: readonly Buffer[]): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, keyFileText(keys));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDir(dirname(path));
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates the key file with a fresh key unless it exists; every process that
 * opens a new store at once ends up with the same key (the file is linked into
 * place, which fails if another process got there first).
 */
function createKeyFile(path: string): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.new`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, keyFileText([secretboxKey()]));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    syncDir(dirname(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
}

export class StoreSealer {
  private keys: Key[] = [];
  /** Keys a rotation in this process just dropped from the file, still opening values during its last pass. */
  private retired: Key[] = [];

  private constructor(readonly source: KeySource) {}

  /**
   * The sealer of the store under `dataDir`: keys from `MEZU_STORE_KEY`, else
   * from `DATA/store.key`. A missing file is created only when the store holds
   * nothing sealed yet (`holdsSealed`): otherwise a new key could open
   * nothing, and the operator must restore the file or set the variable.
   */
  static open(dataDir: string, holdsSealed: () => string | null, checkFile: (path: string) => void): StoreSealer {
    const env = process.env.MEZU_STORE_KEY;
    if (env !== undefined && env.trim() !== '') {
      const s = new StoreSealer({ kind: 'env' });
      s.keys = parseKeys(env, ENV_STORE_KEY);
      return s;
    }
    const path = join(dataDir, STORE_KEY_FILE);
    if (!existsSync(path)) {
      const sealed = holdsSealed();
      if (sealed !== null) {
        throw new MezuError('MEZU_STORE_KEY_INVALID', `store: ${path} is missing, but the store holds values sealed with store key ${sealed}; restore the file from a backup or set ${ENV_STORE_KEY}`);
      }
      createKeyFile(path);
    }
    const s = new StoreSealer({ kind: 'file', path });
    checkFile(path);
    s.reload();
    return s;
  }

  /** Re-reads the key file (a rotation by another process); a no-op for keys from the environment. */
  reload(): void {
    if (this.source.kind !== 'file') return;
    let text: string;
    try {
      text = readFileSync(this.source.path, 'utf8');
    } catch (err) {
      throw new MezuError('MEZU_STORE_KEY_INVALID', `store: cannot read ${this.source.path}: ${(err as Error).message}`, { cause: err });
    }
    this.keys = parseKeys(text, this.source.path);
  }

  /** The id of the key that seals now. */
  get currentId(): string {
    return this.keys[0]!.id;
  }

  /** Key ids this sealer can open, current first. */
  get ids(): string[] {
    return this.keys.map((k) => k.id);
  }

  /**
   * Seals a value under the current key. The key file is read again first, so
   * a process started before a rotation never seals under a key the rotation
   * is about to drop. Seals are rare (a new signing key, CA, secret or mail).
   */
  seal(plain: string): string {
    this.reload();
    const k = this.keys[0]!;
    return `${PREFIX}${k.id}.${secretboxSeal(k.key, Buffer.from(plain, 'utf8')).toString('base64url')}`;
  }

  /** The plain text of a stored value: sealed ones are opened, plain ones (written before sealing) returned as they are. */
  open(stored: string, what: string): string {
    if (!isSealed(stored)) return stored;
    const dot = stored.indexOf('.', PREFIX.length);
    const id = dot === -1 ? '' : stored.slice(PREFIX.length, dot);
    let k = this.keys.find((x) => x.id === id) ?? this.retired.find((x) => x.id === id);
    if (k === undefined) {
      // Sealed by a process that rotated the key since this one read it.
      this.reload();
      k = this.keys.find((x) => x.id === id);
    }
    if (k === undefined) {
      throw new MezuError('MEZU_STORE_KEY_INVALID', `store: ${what} is sealed with store key ${id || '(none)'}, which ${this.source.kind === 'env' ? ENV_STORE_KEY : this.source.path} does not hold (it has ${this.ids.join(', ')})`);
    }
    const plain = secretboxOpen(k.key, Buffer.from(stored.slice(dot + 1), 'base64url'));
    if (plain === null) throw new MezuError('MEZU_STORE_KEY_INVALID', `store: ${what} does not open with store key ${id}: the value was altered`);
    return plain.toString('utf8');
  }

  /** True when a stored value is sealed under the current key (nothing to migrate). */
  isCurrent(stored: string): boolean {
    return stored.startsWith(`${PREFIX}${this.keys[0]!.id}.`);
  }

  /**
   * Rotation, file keys only: a new key is written in front of the current
   * ones (the file then opens both), `reseal` re-seals every value under it,
   * then the older keys are dropped from the file and `reseal` runs once more
   * with them still in memory, for a value another process sealed under the
   * old key just before it read the new file. A crash before the old keys are
   * dropped leaves a file that opens every value, and the next open finishes
   * the re-sealing.
   */
  async rotate(reseal: () => Promise<number>): Promise<{ id: string; previous: string[]; resealed: number }> {
    if (this.source.kind !== 'file') throw new MezuError('MEZU_STORE_KEY_INVALID', `store: the store key comes from ${ENV_STORE_KEY}; rotate it there (docs/SECURITY.md, "Store key")`);
    this.reload();
    const old = this.keys;
    const fresh = secretboxKey();
    writeKeyFile(this.source.path, [fresh, ...old.map((k) => k.key)]);
    this.reload();
    let resealed = await reseal();
    writeKeyFile(this.source.path, [fresh]);
    this.retired = old;
    try {
      this.reload();
      resealed += await reseal();
    } finally {
      this.retired = [];
    }
    return { id: this.currentId, previous: old.map((k) => k.id), resealed };
  }
}

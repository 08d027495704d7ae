/**
 * The only importer of sodium-native: argon2id password hashing and secretbox
 * sealing behind a typed facade.
 *
 * libsodium's `crypto_pwhash_str` produces the standard PHC-encoded string
 * (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, salt from libsodium's
 * CSPRNG), so a stored hash carries its own parameters and
 * `crypto_pwhash_str_needs_rehash` tells whether it was made with other ones.
 * libsodium's argon2id always runs with one lane (p=1).
 *
 * The argon2id calls are synchronous and cost tens of milliseconds of CPU at
 * OWASP's parameters (measured: ~17 ms for m=19 MiB, t=2 on the dev machine):
 * call it only from a hashing worker thread (src/login/hash-worker.ts), never
 * from an event loop that serves requests.
 *
 * Lifetimes: buffers passed in are read during the call only; the facade
 * copies results into JS strings before returning.
 */
import * as sodium from 'sodium-native';

/** OWASP Password Storage Cheat Sheet minimum for argon2id: 19 MiB, 2 iterations, 1 lane. */
export const ARGON2ID_MIN_MEMORY_BYTES = 19 * 1024 * 1024;
export const ARGON2ID_MIN_ITERATIONS = 2;
/** libsodium's bounds (crypto_pwhash_MEMLIMIT_MAX is far above anything sane; we cap at 4 GiB). */
export const ARGON2ID_MAX_MEMORY_BYTES = 4 * 1024 * 1024 * 1024;
export const ARGON2ID_MAX_ITERATIONS = 1000;

export interface Argon2Params {
  /** Memory cost in bytes (libsodium's memlimit). */
  memoryBytes: number;
  /** Iterations (libsodium's opslimit). */
  iterations: number;
}

const STRBYTES: number = sodium.crypto_pwhash_STRBYTES;

/** Hashes a password (its bytes exactly as given) into the encoded argon2id string. */
export function pwhashStr(password: Uint8Array, p: Argon2Params): string {
  const out = Buffer.alloc(STRBYTES);
  sodium.crypto_pwhash_str(out, toBuffer(password), p.iterations, p.memoryBytes);
  const nul = out.indexOf(0);
  return out.toString('latin1', 0, nul === -1 ? out.length : nul);
}

/** True when `password` matches the encoded hash; false on mismatch or a malformed hash. */
export function pwhashStrVerify(encoded: string, password: Uint8Array): boolean {
  const str = encodedBuffer(encoded);
  if (str === null) return false;
  try {
    return sodium.crypto_pwhash_str_verify(str, toBuffer(password));
  } catch {
    return false;
  }
}

/** True when the encoded hash was made with other parameters (or is not argon2id): hash again at the next login. */
export function pwhashStrNeedsRehash(encoded: string, p: Argon2Params): boolean {
  const str = encodedBuffer(encoded);
  if (str === null) return true;
  try {
    return sodium.crypto_pwhash_str_needs_rehash(str, p.iterations, p.memoryBytes);
  } catch {
    return true;
  }
}

function encodedBuffer(encoded: string): Buffer | null {
  if (typeof encoded !== 'string' || encoded.length === 0 || encoded.length >= STRBYTES) return null;
  // libsodium reads a NUL-terminated string from a buffer of exactly STRBYTES.
  const b = Buffer.alloc(STRBYTES);
  b.write(encoded, 'latin1');
  return b;
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

// ── secretbox: XSalsa20-Poly1305, for secrets kept in the store ─────────────
//
// `crypto_secretbox_easy` with a fresh random 24-byte nonce per message (random nonces are safe at this
// size: collisions are negligible far beyond the few thousand values a store ever seals). Cheap (a few
// µs for a PEM key) and synchronous: fine on any thread. Sealed blobs are `nonce || MAC || ciphertext`.

export const SECRETBOX_KEY_BYTES: number = sodium.crypto_secretbox_KEYBYTES;
const NONCE_BYTES: number = sodium.crypto_secretbox_NONCEBYTES;
const MAC_BYTES: number = sodium.crypto_secretbox_MACBYTES;

/** A new random secretbox key (32 bytes from libsodium's CSPRNG). */
export function secretboxKey(): Buffer {
  const k = Buffer.alloc(SECRETBOX_KEY_BYTES);
  sodium.randombytes_buf(k);
  return k;
}

/** Seals `plaintext` under `key`: `nonce || MAC || ciphertext`, authenticated. */
export function secretboxSeal(key: Uint8Array, plaintext: Uint8Array): Buffer {
  const out = Buffer.alloc(NONCE_BYTES + MAC_BYTES + plaintext.byteLength);
  const nonce = out.subarray(0, NONCE_BYTES);
  sodium.randombytes_buf(nonce);
  sodium.crypto_secretbox_easy(out.subarray(NONCE_BYTES), toBuffer(plaintext), nonce, keyBuffer(key));
  return out;
}

/** The plaintext of a sealed blob, or null when it is malformed, was sealed under another key, or was altered. */
export function secretboxOpen(key: Uint8Array, sealed: Uint8Array): Buffer | null {
  if (sealed.byteLength < NONCE_BYTES + MAC_BYTES) return null;
  const s = toBuffer(sealed);
  const out = Buffer.alloc(s.byteLength - NONCE_BYTES - MAC_BYTES);
  return sodium.crypto_secretbox_open_easy(out, s.subarray(NONCE_BYTES), s.subarray(0, NONCE_BYTES), keyBuffer(key)) ? out : null;
}

function keyBuffer(key: Uint8Array): Buffer {
  if (key.byteLength !== SECRETBOX_KEY_BYTES) throw new RangeError(`native: a secretbox key is ${SECRETBOX_KEY_BYTES} bytes, got ${key.byteLength}`);
  return toBuffer(key);
}

/**
 * Password hashing, edge-wide (`passwords`): argon2id memory and iterations at
 * or above OWASP's minimum (m=19 MiB, t=2), and the hashing queue's bound.
 */
import { DEFAULT_HASH_QUEUE, DEFAULT_PASSWORD_ITERATIONS, DEFAULT_PASSWORD_MEMORY_BYTES } from '../defaults.js';
import type { PasswordConfig } from '../types.js';
import { checkKeys, describe, isMapping, own, validateInt, type Problems } from './fields.js';

const PASSWORD_KEYS = ['memory', 'iterations', 'queue'];
/** Same bounds as native/sodium.ts (not imported: config must not load the native addon). */
const MIN_MEMORY = DEFAULT_PASSWORD_MEMORY_BYTES;
const MAX_MEMORY = 4 * 1024 * 1024 * 1024;
const MIN_ITERATIONS = DEFAULT_PASSWORD_ITERATIONS;
const MAX_ITERATIONS = 1000;

export function validatePasswords(v: unknown, at: string, problems: Problems): PasswordConfig | null {
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { memory: 19MiB, iterations: 2, queue: 32 }; got ${describe(v)}` });
    return null;
  }
  const before = problems.length;
  checkKeys(v, PASSWORD_KEYS, at, problems);
  const memoryBytes = validateSize(own(v, 'memory'), `${at}.memory`, problems);
  // Below 2 is under OWASP's minimum for argon2id with m=19 MiB.
  const iterations = validateInt(own(v, 'iterations'), `${at}.iterations`, DEFAULT_PASSWORD_ITERATIONS, MIN_ITERATIONS, MAX_ITERATIONS, problems);
  const queue = validateInt(own(v, 'queue'), `${at}.queue`, DEFAULT_HASH_QUEUE, 1, 100_000, problems);
  if (problems.length !== before || memoryBytes === null || iterations === null || queue === null) return null;
  return { memoryBytes, iterations, queue };
}

/** `19MiB`, `64 MiB`, `1GiB`, or a number of bytes. Bounds: OWASP's 19 MiB minimum to 4 GiB. */
function validateSize(v: unknown, at: string, problems: Problems): number | null {
  if (v === undefined || v === null) return DEFAULT_PASSWORD_MEMORY_BYTES;
  let bytes: number | null = null;
  if (typeof v === 'number' && Number.isInteger(v)) bytes = v;
  else if (typeof v === 'string') {
    const m = /^(\d+)\s*(KiB|MiB|GiB)$/.exec(v.trim());
    if (m !== null) bytes = Number(m[1]) * (m[2] === 'KiB' ? 1024 : m[2] === 'MiB' ? 1024 * 1024 : 1024 * 1024 * 1024);
  }
  if (bytes === null) {
    problems.push({ at, message: `must be a size such as 19MiB, 64MiB or 1GiB (or a number of bytes); got ${describe(v)}` });
    return null;
  }
  if (bytes < MIN_MEMORY) {
    problems.push({ at, message: `is below OWASP's minimum for argon2id (19MiB); got ${describe(v)}` });
    return null;
  }
  if (bytes > MAX_MEMORY) {
    problems.push({ at, message: `must be at most 4GiB; got ${describe(v)}` });
    return null;
  }
  return bytes;
}

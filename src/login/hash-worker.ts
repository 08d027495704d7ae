/**
 * Piscina worker for password hashing: the only place argon2id runs. Each
 * task is synchronous libsodium work (tens of ms of CPU), so it lives on a
 * worker thread and never on an edge worker's event loop. The pool runs these
 * threads at a lower CPU priority (piscina `niceIncrement`), so on a busy
 * machine the scheduler prefers the threads that forward traffic.
 *
 * Tasks and results are plain data (structured clone): passwords travel as
 * UTF-8 bytes exactly as typed.
 */
import { pwhashStr, pwhashStrVerify, pwhashStrNeedsRehash, type Argon2Params } from '../../native/sodium.js';

export type HashTask =
  | { op: 'hash'; password: Uint8Array; params: Argon2Params }
  | { op: 'verify'; password: Uint8Array; encoded: string; params: Argon2Params };

export type HashResult =
  | { op: 'hash'; encoded: string }
  /** `needsRehash`: the stored hash was made with other parameters than `params`. */
  | { op: 'verify'; ok: boolean; needsRehash: boolean };

export default function run(task: HashTask): HashResult {
  if (task.op === 'hash') return { op: 'hash', encoded: pwhashStr(task.password, task.params) };
  const ok = pwhashStrVerify(task.encoded, task.password);
  return { op: 'verify', ok, needsRehash: ok && pwhashStrNeedsRehash(task.encoded, task.params) };
}

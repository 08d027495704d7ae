/**
 * The edge's processes: the primary that only supervises (`primary.ts`,
 * respawning children with `respawn.ts`) and the workers that serve
 * (`worker.ts`), with the options and messages they share (`options.ts`).
 * The primary and the worker are loaded only when one runs, so a command that
 * starts no edge never loads uWS or the request path.
 */
import type { EdgeOptions } from './options.js';

export { ENV_OPTIONS, ENV_CONSOLE_OPTIONS, ENV_WORKER_INDEX, type EdgeOptions, type WorkerMessage, type PrimaryMessage } from './options.js';
export { Respawner, RESPAWN_BACKOFF } from './respawn.js';

/** Runs the edge primary (`mezusphere edge`): forks the workers, and the Console with `--console-port`. */
export async function runPrimary(opts: EdgeOptions): Promise<void> {
  await (await import('./primary.js')).runPrimary(opts);
}

/** Runs edge worker `index` (the process the primary forked). */
export async function runWorker(opts: EdgeOptions, index: number): Promise<void> {
  await (await import('./worker.js')).runWorker(opts, index);
}

/**
 * The benchmark's child processes: started with the running Node (or another
 * program, e.g. nginx), their output drained continuously (a full pipe would stall a process mid-run and show up
 * as latency), readiness awaited with a deadline, and stopped by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Lines kept per process for the failure report; older ones are counted, not kept. */
const TAIL_LINES = 200;

/** SIGTERM first, SIGKILL after this long (5 s). */
const KILL_AFTER_MS = 5_000;

export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly tail: string[] = [];
  linesSeen = 0;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** True once the benchmark itself asked the process to stop. */
  stopping = false;
  private readonly lineWaiters: Array<(line: string, stream: 'stdout' | 'stderr') => boolean> = [];
  /** Listeners that see every line until they unsubscribe (the tail keeps only the last lines). */
  private readonly lineListeners = new Set<(line: string, stream: 'stdout' | 'stderr') => void>();
  private readonly exitWaiters: Array<() => void> = [];

  constructor(name: string, args: readonly string[], cwd: string, command: string = process.execPath) {
    this.name = name;
    this.child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`bench: could not start ${name}`);
    this.pid = this.child.pid;
    this.read(this.child.stdout!, 'stdout');
    this.read(this.child.stderr!, 'stderr');
    this.child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      for (const w of this.exitWaiters.splice(0)) w();
    });
  }

  private read(stream: NodeJS.ReadableStream, which: 'stdout' | 'stderr'): void {
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', (line) => {
      this.linesSeen++;
      this.tail.push(`${which}: ${line}`);
      if (this.tail.length > TAIL_LINES) this.tail.shift();
      for (const l of this.lineListeners) l(line, which);
      for (let i = 0; i < this.lineWaiters.length; ) {
        if (this.lineWaiters[i]!(line, which)) this.lineWaiters.splice(i, 1);
        else i++;
      }
    });
  }

  /**
   * Calls `fn` for every line from now on (counting log lines over a
   * measured window, e.g. tunnel closes); returns the unsubscribe function.
   */
  onLine(fn: (line: string, stream: 'stdout' | 'stderr') => void): () => void {
    this.lineListeners.add(fn);
    return () => {
      this.lineListeners.delete(fn);
    };
  }

  get alive(): boolean {
    return this.exit === null;
  }

  /**
   * Resolve with the first value `match` returns for a line (it returns
   * undefined to keep waiting); reject if the process exits first or the
   * deadline passes.
   */
  waitFor<T>(what: string, timeoutMs: number, match: (line: string, stream: 'stdout' | 'stderr') => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.alive) return reject(this.failure(`exited before ${what}`));
      let done = false;
      const timer = setTimeout(() => finish(() => reject(this.failure(`no ${what} within ${timeoutMs} ms`))), timeoutMs);
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        f();
      };
      this.exitWaiters.push(() => finish(() => reject(this.failure(`exited before ${what}`))));
      this.lineWaiters.push((line, stream) => {
        if (done) return true;
        const v = match(line, stream);
        if (v === undefined) return false;
        finish(() => resolve(v));
        return true;
      });
    });
  }

  failure(msg: string): Error {
    const exit = this.exit ? ` (exit code ${this.exit.code}, signal ${this.exit.signal})` : '';
    return new Error(`bench: ${this.name} ${msg}${exit}; last output:\n  ${this.tail.slice(-30).join('\n  ')}`);
  }

  private exited(timeoutMs: number): Promise<boolean> {
    if (!this.alive) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.exitWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** SIGTERM, then SIGKILL after 5 s. Returns how it ended. */
  async stop(): Promise<string> {
    this.stopping = true;
    if (!this.alive) return `already exited (code ${this.exit!.code}, signal ${this.exit!.signal})`;
    signal(this.pid, 'SIGTERM');
    if (await this.exited(KILL_AFTER_MS)) return `exited after SIGTERM (code ${this.exit!.code}, signal ${this.exit!.signal})`;
    signal(this.pid, 'SIGKILL');
    await this.exited(KILL_AFTER_MS);
    return 'needed SIGKILL';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * Stop processes that one of ours forked (the edge's cluster workers, nginx's
 * workers) if they outlived their parent. A pid is only signalled while
 * /proc/<pid>/cmdline still contains every one of `cmdlineHas` (by default:
 * node running the Mezusphere CLI, what cluster.fork starts), so a recycled
 * pid belonging to someone else is never touched.
 */
export async function stopOrphans(
  pids: readonly number[],
  parentPid: number,
  what = 'edge worker',
  cmdlineHas: readonly string[] = ['node', 'dist/src/cli/main.js'],
): Promise<string[]> {
  const notes: string[] = [];
  const ours = (pid: number): boolean => {
    if (!existsSync(`/proc/${pid}`)) return false;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return false;
    }
    return cmdlineHas.every((s) => cmd.includes(s));
  };
  const left = pids.filter(ours);
  if (left.length === 0) return notes;
  for (const pid of left) {
    notes.push(`${what} ${pid} outlived its parent ${parentPid}; sending SIGTERM`);
    signal(pid, 'SIGTERM');
  }
  const deadline = Date.now() + KILL_AFTER_MS;
  while (Date.now() < deadline && left.some(ours)) await new Promise((r) => setTimeout(r, 100));
  for (const pid of left.filter(ours)) {
    notes.push(`${what} ${pid} needed SIGKILL`);
    signal(pid, 'SIGKILL');
  }
  return notes;
}

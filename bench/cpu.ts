/**
 * CPU accounting from /proc: what each component process spent, so a figure
 * per request can be given even though the load generator shares the cores
 * (the budgets count "CPU-µs/req" of the server-side processes for that reason).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of utime/stime in /proc (`getconf CLK_TCK`, 100 on Linux almost always). */
export function clockTicksPerSecond(): number {
  const out = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim();
  const n = Number(out);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`bench: getconf CLK_TCK printed "${out}"`);
  return n;
}

interface ProcStat {
  ppid: number;
  /** utime + stime, clock ticks, all threads of the process. */
  ticks: number;
}

/**
 * Fields of /proc/<pid>/stat. The second field (comm) is in parentheses and may
 * hold spaces, so split after the last ')': what follows starts at field 3.
 * Field 4 is ppid, fields 14 and 15 are utime and stime (proc(5)).
 */
function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) };
}

/** Ticks of one process, or null when it has gone. */
export function processTicks(pid: number): number | null {
  return readStat(pid)?.ticks ?? null;
}

/** The pid and every live descendant of it (cluster workers, helpers), root first. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st === null) continue;
    const list = children.get(st.ppid);
    if (list === undefined) children.set(st.ppid, [Number(name)]);
    else list.push(Number(name));
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  return out;
}

/** Machine-wide busy and total ticks from the first line of /proc/stat. */
export interface SystemTicks {
  busy: number;
  total: number;
}

export function systemTicks(): SystemTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is
  // already inside user, so only the first eight fields add up to the total.
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** A snapshot of named groups of pids, to subtract from a later one. */
export type GroupTicks = Map<string, Map<number, number | null>>;

export function snapshot(groups: ReadonlyMap<string, readonly number[]>): GroupTicks {
  const out: GroupTicks = new Map();
  for (const [name, pids] of groups) {
    const m = new Map<number, number | null>();
    for (const pid of pids) m.set(pid, processTicks(pid));
    out.set(name, m);
  }
  return out;
}

export interface GroupDelta {
  /** CPU seconds spent in the window by the group's processes. */
  cpuSeconds: number;
  perPid: Record<string, number>;
  /** Pids that were gone at either end of the window: their share is missing. */
  vanished: number[];
}

export function delta(before: GroupTicks, after: GroupTicks, ticksPerSecond: number): Map<string, GroupDelta> {
  const out = new Map<string, GroupDelta>();
  for (const [name, b] of before) {
    const a = after.get(name) ?? new Map<number, number | null>();
    let ticks = 0;
    const perPid: Record<string, number> = {};
    const vanished: number[] = [];
    for (const [pid, t0] of b) {
      const t1 = a.get(pid) ?? null;
      if (t0 === null || t1 === null) {
        vanished.push(pid);
        continue;
      }
      ticks += t1 - t0;
      perPid[String(pid)] = (t1 - t0) / ticksPerSecond;
    }
    out.set(name, { cpuSeconds: ticks / ticksPerSecond, perPid, vanished });
  }
  return out;
}

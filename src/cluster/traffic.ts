/**
 * The Console's traffic figures, made by the edge primary from the same
 * counters the metrics scrape reads: every TRAFFIC_EVERY_MS the primary asks
 * each worker for its cumulative per-project totals (src/front/metrics.ts
 * `totals()`, over the cluster IPC like a scrape), takes what grew since the
 * previous round, adds it to the current minute of a ring of 60 per-minute
 * buckets per project, and writes the ring to the store (src/store/traffic.ts)
 * for the Console, which talks to the edge only through the store.
 *
 * Memory is bounded: 60 buckets per configured project, one previous reply per
 * live worker. Counters are per process, so the previous reply is kept by pid:
 * a respawned worker is a new pid counting from zero, and a worker that missed
 * a round (answering after SCRAPE_WAIT_MS) keeps its previous reply, so its
 * next answer covers both rounds and nothing is counted twice. What a worker
 * counted between its last answer and its death is lost, as for a scrape.
 */
import type { ProjectTraffic, TrafficMinute, TrafficRecord } from '../store/index.js';
import type { TrafficReply } from './metrics.js';

/** How often the primary gathers and writes the figures: the Console's overview refreshes at the same pace. */
export const TRAFFIC_EVERY_MS = 5_000;
/** Minutes kept: the overview shows the last hour. */
export const TRAFFIC_MINUTES = 60;
const MINUTE_MS = 60_000;

function emptyMinute(at: number, nb: number): TrafficMinute {
  return { at, requests: 0, errors5xx: 0, duration: new Array<number>(nb).fill(0), durationSumMs: 0, denials: {}, loginSuccess: 0, loginFailure: 0 };
}

export class TrafficRecorder {
  /** The last reply of each live worker, by pid. */
  private readonly prev = new Map<number, TrafficReply>();
  /** Per project: the ring, slot = minute number mod 60. */
  private readonly rings = new Map<string, Array<TrafficMinute | null>>();
  private lastAt: number;

  constructor(
    private readonly edgeId: string,
    startedAt: number,
    private readonly everyMs = TRAFFIC_EVERY_MS,
  ) {
    this.lastAt = startedAt;
  }

  /**
   * One round: `replies` from the workers that answered, `pids` the workers
   * alive now; returns the record to store.
   */
  add(replies: readonly TrafficReply[], pids: ReadonlySet<number>, now: number): TrafficRecord {
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const grew = new Map<string, number>();
    for (const r of replies) {
      const before = this.prev.get(r.pid);
      for (const cur of r.projects) {
        const was = before?.projects.find((p) => p.project === cur.project);
        const m = this.bucket(cur.project, minute, cur.duration.length);
        const d = (a: number, b: number | undefined) => Math.max(0, a - (b ?? 0));
        const requests = d(cur.requests, was?.requests);
        m.requests += requests;
        grew.set(cur.project, (grew.get(cur.project) ?? 0) + requests);
        m.errors5xx += d(cur.errors5xx, was?.errors5xx);
        m.durationSumMs += d(cur.durationSumMs, was?.durationSumMs);
        for (let i = 0; i < cur.duration.length; i++) m.duration[i]! += d(cur.duration[i]!, was?.duration[i]);
        for (const [reason, n] of Object.entries(cur.denials)) {
          const dn = d(n, was?.denials[reason]);
          if (dn > 0) m.denials[reason] = (m.denials[reason] ?? 0) + dn;
        }
      }
      for (const [project, [ok, failed]] of Object.entries(r.logins)) {
        const was = before?.logins[project];
        const nb = r.projects[0]?.duration.length ?? 0;
        const m = this.bucket(project, minute, nb);
        m.loginSuccess += Math.max(0, ok - (was?.[0] ?? 0));
        m.loginFailure += Math.max(0, failed - (was?.[1] ?? 0));
      }
      this.prev.set(r.pid, r);
    }
    for (const pid of [...this.prev.keys()]) if (!pids.has(pid)) this.prev.delete(pid);

    const seconds = Math.max(0.001, (now - this.lastAt) / 1000);
    this.lastAt = now;
    const oldest = minute - (TRAFFIC_MINUTES - 1) * MINUTE_MS;
    const projects: Record<string, ProjectTraffic> = {};
    for (const [project, ring] of this.rings) {
      const minutes = ring.filter((m): m is TrafficMinute => m !== null && m.at >= oldest).sort((a, b) => a.at - b.at);
      projects[project] = { rps: (grew.get(project) ?? 0) / seconds, minutes };
    }
    return { edgeId: this.edgeId, updatedAt: now, everyMs: this.everyMs, projects };
  }

  /** The bucket of `minute` for `project`, cleared when it still holds the minute an hour before. */
  private bucket(project: string, minute: number, nb: number): TrafficMinute {
    let ring = this.rings.get(project);
    if (ring === undefined) this.rings.set(project, (ring = new Array<TrafficMinute | null>(TRAFFIC_MINUTES).fill(null)));
    const slot = (minute / MINUTE_MS) % TRAFFIC_MINUTES;
    let m = ring[slot] ?? null;
    if (m === null || m.at !== minute) ring[slot] = m = emptyMinute(minute, nb);
    if (m.duration.length < nb) m.duration.push(...new Array<number>(nb - m.duration.length).fill(0));
    return m;
  }
}

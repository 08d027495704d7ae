/**
 * What the request path counts, per worker: requests by project, rule, method
 * class and status class; decisions by outcome and reason; the edge's total
 * time per request and the time waiting on the tunnel, as histograms by
 * project. The request path only adds to preallocated typed arrays at an
 * index: a small integer per rule (its slot, looked up once per request, when
 * the rule is matched), the method class and the status class. Label text is
 * built only when the primary asks for a snapshot (a scrape), and the primary
 * merges the workers' snapshots (src/runtime/metrics.ts).
 *
 * Labels are bounded by the config: a rule's name (`demo:/api/v1/*`, the
 * Policy's `rule`) and its project, never a path or a user. A slot stays
 * allocated once seen, across config versions (counters must not go back);
 * past MAX_SLOTS rules ever seen, further ones share the slot `(other)`.
 *
 * Cost, measured with bench/edge-path.ts (`--metrics on|off`, same run,
 * interleaved rounds): bench/RESULTS.md, "Metrics on the request path".
 */
import type { CompiledConfig, CompiledProject, Policy } from '../config/index.js';
import { DURATION_BUCKETS, histogramSamples, labels, type Family } from '../runtime/index.js';

/** Method classes: `read` (GET, HEAD, OPTIONS), `write` (POST, PUT, PATCH, DELETE), `other` (refused with 405). */
export const METHOD_CLASSES = ['read', 'write', 'other'] as const;
/** Status classes; `aborted`: the client went away before a response head was written. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted'] as const;
const NM = METHOD_CLASSES.length;
const NS = STATUS_CLASSES.length;
const PER_SLOT = NM * NS;

/** Decisions, each `[outcome, reason]`; the index is what the request path passes. */
export const enum DecisionKind {
  AllowedPublic,
  AllowedSession,
  AllowedKey,
  LoginRequired,
  Forbidden,
  PrincipalNotAllowed,
  RouteDenied,
  TooLarge,
  ClientBusy,
  RouteBusy,
  StepUpRequired,
}
export const DECISIONS: ReadonlyArray<readonly [string, string]> = [
  ['allowed', 'public'],
  ['allowed', 'session'],
  ['allowed', 'key'],
  ['login_required', 'MEZU_LOGIN_REQUIRED'],
  ['forbidden', 'MEZU_FORBIDDEN'],
  ['forbidden', 'MEZU_PRINCIPAL_NOT_ALLOWED'],
  ['forbidden', 'MEZU_ROUTE_DENIED'],
  ['limit', 'MEZU_REQUEST_TOO_LARGE'],
  ['limit', 'MEZU_CLIENT_BUSY'],
  ['limit', 'MEZU_ROUTE_BUSY'],
  ['step_up_required', 'MEZU_STEP_UP_REQUIRED'],
];
const ND = DECISIONS.length;

/** Rules (slots) ever seen by one worker before further ones share `(other)`: far above any real config. */
export const MAX_SLOTS = 4096;
/** Slot 0: no project (the Host unknown or invalid, no config, a refusal before the route). */
export const SLOT_NONE = 0;
const SLOT_OTHER = 1;
/** Route label of a request of a project that matched no rule (a malformed path, the JWKS). */
const NO_RULE = '(none)';

const NB = DURATION_BUCKETS.length + 1;
/** Bucket bounds in milliseconds (what performance.now() differences are). */
const BOUNDS_MS = Float64Array.from(DURATION_BUCKETS, (s) => s * 1000);

export function methodClass(method: string): number {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
      return 0;
    case 'POST':
    case 'PUT':
    case 'PATCH':
    case 'DELETE':
      return 1;
    default:
      return 2;
  }
}

/** 101 → 0 … 599 → 4; 0 (no head written) → 5 `aborted`. */
function statusClass(status: number): number {
  if (status === 0) return 5;
  const c = ((status / 100) | 0) - 1;
  return c < 0 ? 0 : c > 4 ? 4 : c;
}

function bucketOf(ms: number): number {
  let i = 0;
  while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
  return i;
}

/**
 * One project's cumulative figures in one worker, for the Console's traffic
 * view (src/cluster/traffic.ts turns them into per-minute figures): built only
 * when the primary asks, from the same arrays the scrape reads.
 */
export interface ProjectTotals {
  project: string;
  requests: number;
  errors5xx: number;
  /** Per-bucket counts of the edge's time per request (DURATION_BUCKETS, then +Inf), not cumulated. */
  duration: number[];
  durationSumMs: number;
  /** Refusals (every decision but `allowed`) by reason code. */
  denials: Record<string, number>;
}

export class RequestMetrics {
  /** Per slot: its project's index and its route label. */
  private slotProject = new Int32Array(64);
  private readonly slotRoute: string[] = ['(none)', '(other)'];
  private slots = 2;
  private readonly slotByName = new Map<string, number>();
  /** Per project index: its id; index 0 is `(none)`, 1 `(other)`. */
  private readonly projects: string[] = ['(none)', '(other)'];
  private readonly projectByName = new Map<string, number>();

  /** The compiled config the policy → slot map was built for; a new one clears it (old Policy objects are not kept). */
  private cfg: CompiledConfig | null = null;
  private readonly bySlotPolicy = new Map<Policy, number>();
  private readonly byProjectNoRule = new Map<CompiledProject, number>();

  private requests = new Float64Array(64 * PER_SLOT);
  private decisions = new Float64Array(16 * ND);
  private duration = new Float64Array(16 * NB);
  private durationSum = new Float64Array(16);
  private wait = new Float64Array(16 * NB);
  private waitSum = new Float64Array(16);

  constructor() {
    this.slotProject[SLOT_OTHER] = 1;
  }

  /** The slot of a request's rule (`policy` null: the project's requests that matched none). One Map lookup per request. */
  slotOf(cfg: CompiledConfig, project: CompiledProject, policy: Policy | null): number {
    if (cfg !== this.cfg) {
      this.cfg = cfg;
      this.bySlotPolicy.clear();
      this.byProjectNoRule.clear();
    }
    if (policy !== null) {
      const s = this.bySlotPolicy.get(policy);
      if (s !== undefined) return s;
      const n = this.named(project.id, policy.rule);
      this.bySlotPolicy.set(policy, n);
      return n;
    }
    const s = this.byProjectNoRule.get(project);
    if (s !== undefined) return s;
    const n = this.named(project.id, NO_RULE);
    this.byProjectNoRule.set(project, n);
    return n;
  }

  /** A request answered: its status (0 when no head was written), the edge's time since `startedAt` (performance.now()). */
  count(slot: number, method: number, status: number, startedAt: number): void {
    this.requests[slot * PER_SLOT + method * NS + statusClass(status)]!++;
    const p = this.slotProject[slot]!;
    const ms = performance.now() - startedAt;
    this.duration[p * NB + bucketOf(ms)]!++;
    this.durationSum[p]! += ms;
  }

  decision(slot: number, kind: DecisionKind): void {
    this.decisions[this.slotProject[slot]! * ND + kind]!++;
  }

  /** The response head arrived `sentAt` (performance.now()) after the request went to the tunnel. */
  tunnelWait(slot: number, sentAt: number): void {
    const p = this.slotProject[slot]!;
    const ms = performance.now() - sentAt;
    this.wait[p * NB + bucketOf(ms)]!++;
    this.waitSum[p]! += ms;
  }

  private named(project: string, route: string): number {
    const key = `${project}\u0000${route}`;
    const known = this.slotByName.get(key);
    if (known !== undefined) return known;
    if (this.slots >= MAX_SLOTS) return SLOT_OTHER;
    let p = this.projectByName.get(project);
    if (p === undefined) {
      p = this.projects.length;
      this.projects.push(project);
      this.projectByName.set(project, p);
      if (p >= this.durationSum.length) this.growProjects();
    }
    const s = this.slots++;
    if (s >= this.slotProject.length) this.growSlots();
    this.slotProject[s] = p;
    this.slotRoute.push(route);
    this.slotByName.set(key, s);
    return s;
  }

  private growSlots(): void {
    const n = this.slotProject.length * 2;
    const sp = new Int32Array(n);
    sp.set(this.slotProject);
    this.slotProject = sp;
    const r = new Float64Array(n * PER_SLOT);
    r.set(this.requests);
    this.requests = r;
  }

  private growProjects(): void {
    const n = this.durationSum.length * 2;
    const grow = (a: Float64Array, per: number) => {
      const b = new Float64Array(n * per);
      b.set(a);
      return b;
    };
    this.decisions = grow(this.decisions, ND);
    this.duration = grow(this.duration, NB);
    this.durationSum = grow(this.durationSum, 1);
    this.wait = grow(this.wait, NB);
    this.waitSum = grow(this.waitSum, 1);
  }

  /** This worker's figures as families (label text built here, at a scrape). Only non-zero series are listed. */
  families(): Family[] {
    const req: Family = { name: 'mezu_edge_requests_total', help: 'Requests answered by the edge, by project, rule, method class and status class (hosted pages under /_mezu/ are counted by mezu_edge_login_events_total).', type: 'counter', samples: [] };
    for (let s = 0; s < this.slots; s++) {
      for (let m = 0; m < NM; m++) {
        for (let c = 0; c < NS; c++) {
          const v = this.requests[s * PER_SLOT + m * NS + c]!;
          if (v === 0) continue;
          req.samples.push([labels([['project', this.projects[this.slotProject[s]!]!], ['route', this.slotRoute[s]!], ['method', METHOD_CLASSES[m]!], ['status', STATUS_CLASSES[c]!]]), v]);
        }
      }
    }
    const dec: Family = { name: 'mezu_edge_decisions_total', help: 'Access decisions by project, outcome (allowed, login_required, forbidden, step_up_required, limit) and reason code.', type: 'counter', samples: [] };
    const dur: Family = { name: 'mezu_edge_request_duration_seconds', help: 'Time from the request head at the edge to the end of its answer, by project.', type: 'histogram', samples: [] };
    const wait: Family = { name: 'mezu_edge_tunnel_wait_seconds', help: 'Time from a request sent on its tunnel to the response head from the Warpgate, by project.', type: 'histogram', samples: [] };
    for (let p = 0; p < this.projects.length; p++) {
      const project = this.projects[p]!;
      for (let d = 0; d < ND; d++) {
        const v = this.decisions[p * ND + d]!;
        if (v !== 0) dec.samples.push([labels([['project', project], ['outcome', DECISIONS[d]![0]], ['reason', DECISIONS[d]![1]]]), v]);
      }
      if (this.sumOf(this.duration, p) > 0) histogramSamples(dur.samples, [['project', project]], DURATION_BUCKETS, this.duration, p * NB, this.durationSum[p]! / 1000);
      if (this.sumOf(this.wait, p) > 0) histogramSamples(wait.samples, [['project', project]], DURATION_BUCKETS, this.wait, p * NB, this.waitSum[p]! / 1000);
    }
    return [req, dec, dur, wait];
  }

  /** Cumulative figures per configured project (not `(none)` nor `(other)`), for the Console's traffic view. */
  totals(): ProjectTotals[] {
    const out: ProjectTotals[] = [];
    for (let p = 2; p < this.projects.length; p++) out.push({ project: this.projects[p]!, requests: 0, errors5xx: 0, duration: Array.from(this.duration.subarray(p * NB, p * NB + NB)), durationSumMs: this.durationSum[p]!, denials: {} });
    for (let s = 2; s < this.slots; s++) {
      const p = this.slotProject[s]!;
      if (p < 2) continue;
      const t = out[p - 2]!;
      for (let m = 0; m < NM; m++) {
        for (let c = 0; c < NS; c++) {
          const v = this.requests[s * PER_SLOT + m * NS + c]!;
          t.requests += v;
          if (c === 4) t.errors5xx += v;
        }
      }
    }
    for (let p = 2; p < this.projects.length; p++) {
      for (let d = 0; d < ND; d++) {
        const v = this.decisions[p * ND + d]!;
        if (v !== 0 && DECISIONS[d]![0] !== 'allowed') out[p - 2]!.denials[DECISIONS[d]![1]] = v;
      }
    }
    return out;
  }

  private sumOf(a: Float64Array, p: number): number {
    let n = 0;
    for (let i = 0; i < NB; i++) n += a[p * NB + i]!;
    return n;
  }
}

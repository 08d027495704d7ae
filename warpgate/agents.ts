/**
 * One tunnel agent (./agent.ts) per edge endpoint. A Warpgate given several
 * endpoints — the nodes of a replicated cluster, from enrollment, or
 * `--edge HOST:PORT,HOST:PORT` — holds tunnels to every one, so any node can
 * forward to this origin, and an edge node only ever forwards over its own
 * tunnels (no relaying between nodes).
 *
 * Why an agent each, and not one agent dialing many addresses: each node has
 * its own workers, edge instance and lifetime. An agent already tracks exactly
 * that for one edge — the per-worker share, the instance id from the hello, a
 * reconnect backoff, PING liveness per tunnel, the make-before-break rotation
 * — so a dead node is one agent redialing with its own backoff while the
 * others' tunnels, timers and counters are untouched. The set only fans out
 * what concerns them all: a renewed certificate (every agent rotates its own
 * tunnels), a changed endpoint list (agents added or stopped), stop.
 */
import { MAX_HELLO_ENDPOINTS } from '../wire/index.js';
import { splitEndpoint } from './enroll.js';

export interface Credentials {
  cert: string;
  key: string;
  ca: string;
}

/** What the set needs of one endpoint's agent (./agent.ts `Agent`; a fake in the unit tests). */
export interface EndpointAgent {
  start(): void;
  stop(): Promise<void>;
  setCredentials(c: Credentials): void;
  /** Tunnels open now. */
  readonly tunnels: number;
  readonly counts: { dialsOk: number; dialsFailed: number; drops: number; reconnects: number };
}

/** One endpoint's figures, for the metrics (`edge` label). */
export interface EdgeCounts {
  edge: string;
  tunnels: number;
  counts: EndpointAgent['counts'];
}

/**
 * Makes the agent of `endpoint`, dialing with `creds`, telling `onDialFailure`
 * of every failed dial and `onEndpoints` of the node endpoints its edge's hello lists.
 */
export type MakeAgent = (endpoint: string, creds: Credentials, onDialFailure: (why: string, consecutive: number) => void, onEndpoints: (endpoints: string[]) => void) => EndpointAgent;

/**
 * `--edge HOST:PORT[,HOST:PORT…]` (static certificates): the endpoints, each
 * once, in the order given; or what is wrong with the text.
 */
export function parseEdgeList(text: string): string[] | { error: string } {
  const out: string[] = [];
  for (const raw of text.split(',')) {
    const e = raw.trim();
    if (splitEndpoint(e) === null) return { error: `--edge must be HOST:PORT[,HOST:PORT…] (static certificates) or the Console URL (enrollment with --key); "${e}" is not HOST:PORT` };
    if (!out.includes(e)) out.push(e);
  }
  return out;
}

export class AgentSet {
  private readonly agents = new Map<string, EndpointAgent>();
  private started = false;
  private stopped = false;
  /** Endpoints unlisted and without a tunnel at the last renewal (dropped if so again at the next). */
  private unlisted = new Set<string>();

  constructor(
    endpoints: readonly string[],
    private creds: Credentials,
    private readonly make: MakeAgent,
    private readonly log: (m: string) => void,
    /**
     * Told of a failed dial only while no endpoint holds a tunnel: enrollment
     * then checks the key by renewing early (a revoked key closes the tunnels
     * of every node). One dead node among live ones is not a reason to.
     */
    private readonly onDialFailure?: (why: string, consecutive: number) => void,
  ) {
    for (const e of endpoints) this.add(e);
  }

  /** The endpoints dialed, in the order they were given. */
  get endpoints(): string[] {
    return [...this.agents.keys()];
  }

  /** Tunnels open now, over every endpoint. */
  get tunnels(): number {
    let n = 0;
    for (const a of this.agents.values()) n += a.tunnels;
    return n;
  }

  perEndpoint(): EdgeCounts[] {
    return [...this.agents].map(([edge, a]) => ({ edge, tunnels: a.tunnels, counts: a.counts }));
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    for (const a of this.agents.values()) a.start();
  }

  /** A renewed certificate: every agent moves its tunnels to it (make-before-break, one at a time each). */
  setCredentials(c: Credentials): void {
    this.creds = c;
    for (const a of this.agents.values()) a.setCredentials(c);
  }

  /**
   * The endpoint list of a renewal: agents for new endpoints start dialing
   * with the current certificate. An endpoint no longer listed is dropped
   * (its agent drains: GOAWAY, in-flight streams finish; no more redials)
   * only when it holds no tunnel and was unlisted and tunnel-less at the
   * previous renewal too. The list is made of the nodes whose advertisement
   * was fresh at that moment, so one renewal can miss a node that is alive
   * (its advertisement late) or restarting (it withdrew it on its drain);
   * dropping it then would keep this origin from that node until the next
   * renewal, ~40 minutes later. Two renewals without it, with no tunnel at
   * either, is a node that is gone.
   */
  setEndpoints(endpoints: readonly string[]): void {
    if (this.stopped || endpoints.length === 0) return;
    const want = new Set(endpoints);
    const gone = new Set<string>();
    for (const [e, a] of [...this.agents]) {
      if (want.has(e)) continue;
      if (a.tunnels > 0 || !this.unlisted.has(e)) {
        gone.add(e);
        this.log(`warpgate: the edge endpoint ${e} is no longer listed; ${a.tunnels > 0 ? 'it holds tunnels, kept' : 'kept until the next renewal'}`);
        continue;
      }
      this.agents.delete(e);
      this.log(`warpgate: the edge endpoint ${e} is no longer listed and has held no tunnel over two renewals; draining its agent`);
      void a.stop();
    }
    // Remembered only while tunnel-less: one that serves starts the count again.
    this.unlisted = new Set([...gone].filter((e) => (this.agents.get(e)?.tunnels ?? 0) === 0));
    for (const e of endpoints) {
      if (this.agents.has(e)) continue;
      this.log(`warpgate: a new edge endpoint ${e}; dialing it`);
      this.join(e);
    }
  }

  /**
   * The node endpoints an edge's hello lists (a replicated cluster: every
   * live node): an agent starts for each one not dialed yet, so a node that
   * joins gets this origin's tunnels within its nodes' config poll. Only
   * adds — a node missing from one node's view is not dropped for it (the
   * renewal's rule above decides that). The hello comes over a tunnel whose
   * edge certificate chains to the pinned CA, and every endpoint is dialed
   * with that same pin, so a listed address can only lead to an edge of this
   * cluster; the list is bounded (MAX_HELLO_ENDPOINTS agents in all).
   */
  learn(endpoints: readonly string[]): void {
    if (this.stopped) return;
    for (const e of endpoints) {
      // Listed by a live node: it advertised lately, so a renewal's count toward dropping it starts over.
      this.unlisted.delete(e);
      if (this.agents.has(e)) continue;
      if (this.agents.size >= MAX_HELLO_ENDPOINTS) return;
      if (splitEndpoint(e) === null) continue;
      this.log(`warpgate: the edge told of a node at ${e}; dialing it`);
      this.join(e);
    }
  }

  /** Graceful: every agent drains its tunnels (GOAWAY on each, in-flight streams finish). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
  }

  /** An endpoint found after the start (a renewal's list, a hello): its agent, dialing at once if the set runs. */
  private join(endpoint: string): void {
    const a = this.add(endpoint);
    if (this.started) a.start();
  }

  private add(endpoint: string): EndpointAgent {
    const a = this.make(
      endpoint,
      this.creds,
      (why, n) => {
        if (this.tunnels === 0) this.onDialFailure?.(why, n);
      },
      (list) => this.learn(list),
    );
    this.agents.set(endpoint, a);
    return a;
  }
}

/**
 * The route table of one project: an exact-path Map plus a segment trie of
 * prefix rules, built once per config version and frozen; `match` is what
 * the request path calls. Rule paths and request keys are folded the same
 * way (normalize.ts routeKey: ASCII lower case, no trailing slash).
 */
import type { Policy } from '../config/types.js';
import { routeKey } from './normalize.js';

/** One rule as the table needs it. */
export interface RouteRule {
  /** Normalized rule path: exact (`/health`) or prefix (`/api/v1/*`). */
  path: string;
  /** Upper-case methods the rule is narrowed to, or null for every method. */
  methods: readonly string[] | null;
  policy: Policy;
}

/** The rules registered at one path: method-narrowed ones first, then the catch-all. */
class PathEntry {
  /** Method → policy of the rule narrowed to it; null when no rule here is narrowed. */
  byMethod: Map<string, Policy> | null = null;
  /** Policy of the rule without `methods`, or null. */
  any: Policy | null = null;
}

class TrieNode {
  children: Map<string, TrieNode> | null = null;
  entry: PathEntry | null = null;
  constructor(readonly parent: TrieNode | null) {}
}

/** The rule at this path for `method`, or null to fall through to a less specific path. */
function pick(entry: PathEntry, method: string): Policy | null {
  if (entry.byMethod !== null) {
    const p = entry.byMethod.get(method);
    if (p !== undefined) return p;
  }
  return entry.any;
}

export class RouteTable {
  readonly #exact: Map<string, PathEntry> | null;
  /** Root of the prefix trie (the node for `/*`), or null when there are no prefix rules. */
  readonly #prefixes: TrieNode | null;
  readonly #default: Policy;

  constructor(rules: readonly RouteRule[], fallback: Policy) {
    this.#default = fallback;
    const exact = new Map<string, PathEntry>();
    const root = new TrieNode(null);
    let prefixCount = 0;
    for (const r of rules) {
      // Keyed by the folded path (ASCII lower case, no trailing slash): requests are matched by their folded key.
      const key = routeKey(r.path);
      let entry: PathEntry;
      if (key.endsWith('/*')) {
        prefixCount++;
        entry = trieEntry(root, key.slice(0, -2));
      } else {
        entry = exact.get(key) ?? new PathEntry();
        exact.set(key, entry);
      }
      addRule(entry, r.methods, r.policy);
    }
    for (const e of exact.values()) {
      headFollowsGet(e);
      Object.freeze(e);
    }
    freezeTrie(root);
    this.#exact = exact.size === 0 ? null : exact;
    this.#prefixes = prefixCount === 0 ? null : root;
    Object.freeze(this);
  }

  /**
   * Most specific rule for a normalized path and an upper-case method:
   * exact path, then the longest prefix, then shorter ones; at one path a
   * rule narrowed to the method beats the unnarrowed one, and a rule narrowed
   * to other methods is skipped. Falls back to the project default.
   * Allocates only the segment strings used as trie keys.
   */
  match(method: string, path: string): Policy {
    if (this.#exact !== null) {
      const entry = this.#exact.get(path);
      if (entry !== undefined) {
        const p = pick(entry, method);
        if (p !== null) return p;
      }
    }
    const root = this.#prefixes;
    if (root !== null) {
      // Walk down as far as the path's segments go; the deepest node is the longest prefix.
      let node = root;
      const len = path.length;
      let pos = 1;
      while (pos < len && node.children !== null) {
        let end = path.indexOf('/', pos);
        if (end === -1) end = len;
        const child = node.children.get(path.slice(pos, end));
        if (child === undefined) break;
        node = child;
        pos = end + 1;
      }
      // Then back up towards `/*` until a rule accepts the method.
      for (let n: TrieNode | null = node; n !== null; n = n.parent) {
        if (n.entry !== null) {
          const p = pick(n.entry, method);
          if (p !== null) return p;
        }
      }
    }
    return this.#default;
  }
}

/** The entry for prefix `base` (`''` for `/*`, or `/a/b` for `/a/b/*`), creating trie nodes as needed. */
function trieEntry(root: TrieNode, base: string): PathEntry {
  let node = root;
  if (base !== '') {
    for (const seg of base.slice(1).split('/')) {
      if (node.children === null) node.children = new Map();
      let child = node.children.get(seg);
      if (child === undefined) {
        child = new TrieNode(node);
        node.children.set(seg, child);
      }
      node = child;
    }
  }
  if (node.entry === null) node.entry = new PathEntry();
  return node.entry;
}

/** Validation rejects overlapping rules; should two arrive anyway, the first one listed wins. */
function addRule(entry: PathEntry, methods: readonly string[] | null, policy: Policy): void {
  if (methods === null) {
    if (entry.any === null) entry.any = policy;
    return;
  }
  if (entry.byMethod === null) entry.byMethod = new Map();
  for (const m of methods) {
    if (!entry.byMethod.has(m)) entry.byMethod.set(m, policy);
  }
}

/**
 * HEAD is GET without the body (RFC 9110 §9.3.2), and applications answer it
 * with their GET handler: a rule narrowed to GET also governs HEAD at its path
 * unless another rule there names HEAD. Otherwise `HEAD /reports` would fall
 * to a looser rule and read the headers of what `GET /reports` protects.
 */
function headFollowsGet(entry: PathEntry): void {
  const m = entry.byMethod;
  if (m === null || m.has('HEAD')) return;
  const get = m.get('GET');
  if (get !== undefined) m.set('HEAD', get);
}

function freezeTrie(node: TrieNode): void {
  if (node.entry !== null) {
    headFollowsGet(node.entry);
    Object.freeze(node.entry);
  }
  if (node.children !== null) for (const child of node.children.values()) freezeTrie(child);
  Object.freeze(node);
}


/**
 * Compile a validated config into what the hot path reads: per project, an
 * exact-path Map plus a segment trie of prefix rules, each rule holding a
 * frozen Policy built here once. Everything returned is frozen, so a worker
 * swaps one snapshot by reference and never sees a half-applied config.
 */
import { FrozenMap } from './frozen-map.js';
import { DEFAULT_MAX_BODY_BYTES } from './limits.js';
import { routeKey } from '../route/index.js';
import { defaultLoginConfig, defaultPasswordConfig, DEFAULT_ORGANIZATION, orgDirectoryId } from './defaults.js';
import type {
  AuthMode,
  CompiledConfig,
  CompiledProject,
  Policy,
  ProjectConfig,
  RouteConfig,
  ValidConfig,
} from './types.js';

export { normalizeHost } from './host.js';

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

class Project implements CompiledProject {
  readonly id: string;
  readonly name: string;
  readonly organization: string;
  readonly directory: string;
  readonly upstream: string;
  readonly sessionAbsoluteMs: number;
  readonly sessionIdleMs: number;
  readonly hosts: readonly string[];
  readonly login: CompiledProject['login'];
  readonly #exact: Map<string, PathEntry> | null;
  /** Root of the prefix trie (the node for `/*`), or null when there are no prefix rules. */
  readonly #prefixes: TrieNode | null;
  readonly #default: Policy;

  constructor(p: ProjectConfig) {
    this.id = p.id;
    this.name = p.name;
    this.organization = p.organization ?? DEFAULT_ORGANIZATION;
    this.directory = p.directory === 'organization' ? orgDirectoryId(this.organization) : p.id;
    this.upstream = p.upstream;
    this.sessionAbsoluteMs = p.session.absoluteMs;
    this.sessionIdleMs = p.session.idleMs;
    this.hosts = Object.freeze([...p.hosts]);
    const l = p.login ?? defaultLoginConfig();
    this.login = Object.freeze({
      signup: l.signup,
      publicUrl: l.publicUrl ?? `https://${p.hosts[0]}`,
      branding: Object.freeze({ name: l.branding.name ?? p.name, color: l.branding.color, logoUrl: l.branding.logoUrl }),
      resetTtlMs: l.resetTtlMs,
      throttle: Object.freeze({ account: Object.freeze({ ...l.throttle.account }), ip: Object.freeze({ ...l.throttle.ip }) }),
    });
    const projectMaxBody = p.maxBody ?? DEFAULT_MAX_BODY_BYTES;
    this.#default = makePolicy(p.default, ['user'], [], [], projectMaxBody, `${p.id}:default`);

    const exact = new Map<string, PathEntry>();
    const root = new TrieNode(null);
    let prefixCount = 0;
    for (const r of p.routes) {
      const policy = makePolicy(r.auth, r.principals, r.roles, r.permissions, r.maxBody ?? projectMaxBody, ruleName(p.id, r));
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
      addRule(entry, r.methods, policy);
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
function addRule(entry: PathEntry, methods: string[] | null, policy: Policy): void {
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

function makePolicy(
  auth: AuthMode,
  principals: readonly string[],
  roles: readonly string[],
  permissions: readonly string[],
  maxBody: number,
  rule: string,
): Policy {
  // Same key order for every policy: one hidden class on the hot path.
  return Object.freeze({
    auth,
    allowUser: principals.includes('user'),
    allowServiceAccount: principals.includes('service_account'),
    roles: roles.length === 0 ? null : Object.freeze([...roles]),
    permissions: permissions.length === 0 ? null : Object.freeze([...permissions]),
    maxBody,
    rule,
  });
}

/** `demo:/api/v1/*`, or `demo:/health [GET,HEAD]` for a method-narrowed rule. */
function ruleName(projectId: string, r: RouteConfig): string {
  return r.methods === null
    ? `${projectId}:${r.path}`
    : `${projectId}:${r.path} [${r.methods.join(',')}]`;
}

/**
 * Compile a validated config. Throws only when handed a config that
 * validation would have refused (a host or project id used twice): that is a
 * caller bug, and guessing which project owns a host would misroute traffic.
 */
export function compileConfig(config: ValidConfig, version: number): CompiledConfig {
  const hosts = new Map<string, CompiledProject>();
  const projects = new Map<string, CompiledProject>();
  for (const p of config.projects) {
    if (projects.has(p.id)) {
      throw new Error(`config: project id "${p.id}" is used twice; validate the config before compiling`);
    }
    const compiled = new Project(p);
    projects.set(p.id, compiled);
    for (const h of p.hosts) {
      const owner = hosts.get(h);
      if (owner !== undefined) {
        throw new Error(
          `config: host "${h}" belongs to projects "${owner.id}" and "${p.id}"; validate the config before compiling`,
        );
      }
      hosts.set(h, compiled);
    }
  }
  const orgs = new Map<string, Readonly<{ id: string; name: string }>>();
  orgs.set(DEFAULT_ORGANIZATION, Object.freeze({ id: DEFAULT_ORGANIZATION, name: 'Default' }));
  for (const o of config.organizations ?? []) orgs.set(o.id, Object.freeze({ id: o.id, name: o.name }));
  return Object.freeze({
    version,
    organizations: new FrozenMap(orgs),
    hosts: new FrozenMap(hosts),
    projects: new FrozenMap(projects),
    passwords: Object.freeze({ ...(config.passwords ?? defaultPasswordConfig()) }),
    trustedProxies: Object.freeze([...(config.trustedProxies ?? [])]),
  });
}

/**
 * Compile a validated config into what the hot path reads: per project, an
 * exact-path Map plus a segment trie of prefix rules, each rule holding a
 * frozen Policy built here once. Everything returned is frozen, so a worker
 * swaps one snapshot by reference and never sees a half-applied config.
 */
import { FrozenMap } from './frozen-map.js';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_SOCKETS, DEFAULT_WS_IDLE_MS } from './limits.js';
import { RouteTable, type RouteRule } from '../route/index.js';
import { defaultLoginConfig, defaultPasswordConfig, DEFAULT_ORGANIZATION, orgDirectoryId } from './defaults.js';
import type {
  AuthMode,
  CompiledConfig,
  CompiledProject,
  Policy,
  ProjectConfig,
  RouteConfig,
  StepUpConfig,
  StepUpRule,
  ValidConfig,
} from './types.js';
import { ACR_MFA } from '../../wire/index.js';

export { normalizeHost } from './host.js';

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
  readonly #routes: RouteTable;

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
      adaptive: Object.freeze({
        newDevice: l.adaptive?.newDevice ?? 'none',
        newNetwork: l.adaptive?.newNetwork ?? 'none',
        failureBurst: l.adaptive?.failureBurst == null ? null : Object.freeze({ ...l.adaptive.failureBurst }),
      }),
    });
    const projectMaxBody = p.maxBody ?? DEFAULT_MAX_BODY_BYTES;
    const rules: RouteRule[] = p.routes.map((r) => ({ path: r.path, methods: r.methods, policy: makePolicy(r.auth, r.principals, r.roles, r.permissions, r.maxBody ?? projectMaxBody, r.maxInflight ?? 0, wsLimits(r), ruleName(p.id, r), r.stepUp === undefined ? null : compileStepUp(r.stepUp)) }));
    this.#routes = new RouteTable(rules, makePolicy(p.default, ['user'], [], [], projectMaxBody, 0, wsLimits({}), `${p.id}:default`, null));
    Object.freeze(this);
  }

  /** Most specific rule for a request's match key and method (route/table.ts). */
  match(method: string, path: string): Policy {
    return this.#routes.match(method, path);
  }
}

function makePolicy(
  auth: AuthMode,
  principals: readonly string[],
  roles: readonly string[],
  permissions: readonly string[],
  maxBody: number,
  maxInflight: number,
  ws: WsLimits,
  rule: string,
  stepUp: StepUpRule | null,
): Policy {
  // Same key order for every policy: one hidden class on the hot path.
  return Object.freeze({
    auth,
    allowUser: principals.includes('user'),
    allowServiceAccount: principals.includes('service_account'),
    roles: roles.length === 0 ? null : Object.freeze([...roles]),
    permissions: permissions.length === 0 ? null : Object.freeze([...permissions]),
    maxBody,
    maxInflight,
    websocket: ws.websocket,
    maxMessage: ws.maxMessage,
    idleTimeoutMs: ws.idleTimeoutMs,
    maxSockets: ws.maxSockets,
    stepUp,
    rule,
  });
}

function compileStepUp(s: StepUpConfig): StepUpRule {
  const maxAgeMs = s.maxAgeMs ?? Infinity;
  return Object.freeze({
    maxAgeMs,
    factors: Object.freeze([...s.factors]),
    totp: s.factors.includes('totp'),
    webauthn: s.factors.includes('webauthn'),
    device: s.device === 'known',
    acr: ACR_MFA,
    // A device-only rule names no authentication class: the challenge says max_age alone (RFC 9470 §3 allows either).
    challenge: stepUpChallenge(s.maxAgeMs, s.factors.length === 0 ? null : ACR_MFA),
  });
}

/**
 * The `WWW-Authenticate` value of a step-up refusal (RFC 9470 §3): the Bearer
 * scheme (RFC 6750 §3) with `error="insufficient_user_authentication"`,
 * `max_age` in seconds when the rule has one, and `acr_values`. Built once
 * per rule here; every value is quoted, as in the RFC's examples.
 */
export function stepUpChallenge(maxAgeMs: number | null, acr: string | null): string {
  const parts = ['Bearer realm="mezusphere"', 'error="insufficient_user_authentication"', 'error_description="A second factor used more recently is required"'];
  if (maxAgeMs !== null) parts.push(`max_age="${Math.floor(maxAgeMs / 1000)}"`);
  if (acr !== null) parts.push(`acr_values="${acr}"`);
  return parts.join(', ');
}

type WsLimits = Pick<Policy, 'websocket' | 'maxMessage' | 'idleTimeoutMs' | 'maxSockets'>;

/** A rule's WebSocket settings with the defaults applied. */
function wsLimits(r: Pick<RouteConfig, 'websocket' | 'maxMessage' | 'idleTimeoutMs' | 'maxSockets'>): WsLimits {
  return {
    websocket: r.websocket ?? true,
    maxMessage: r.maxMessage ?? DEFAULT_MAX_MESSAGE_BYTES,
    idleTimeoutMs: r.idleTimeoutMs ?? DEFAULT_WS_IDLE_MS,
    maxSockets: r.maxSockets ?? DEFAULT_MAX_SOCKETS,
  };
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

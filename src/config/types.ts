/**
 * Config types. Unvalidated input (`unknown` from YAML) and validated config
 * have different types; only `validateConfig` turns one into the other, and
 * only `compileConfig` turns validated config into the per-worker lookup
 * structures the hot path uses.
 */
import type { PrincipalType } from '../contract/index.js';

/** `required`: a credential is needed; `public`: forwarded without one; `deny`: never forwarded (403). */
export type AuthMode = 'required' | 'public' | 'deny';

export interface RouteConfig {
  /** Exact path (`/health`) or prefix (`/api/v1/*`, which also covers `/api/v1` itself). Normalized form only. */
  path: string;
  /** Upper-case methods this rule is narrowed to, or null for every method. */
  methods: string[] | null;
  auth: AuthMode;
  /** Kinds of principal accepted on a `required` route. Default: `[user]`. */
  principals: PrincipalType[];
  /** The principal needs at least one of these roles (empty: no role needed). */
  roles: string[];
  /** The principal needs every one of these permissions (empty: none needed). */
  permissions: string[];
}

export interface ProjectConfig {
  id: string;
  /** Display name (defaults to the id). */
  name: string;
  /** Lower-case host names without port or trailing dot. */
  hosts: string[];
  /** Warpgate pool that serves this project. */
  upstream: string;
  session: { absoluteMs: number; idleMs: number };
  /** Mode for paths no rule covers. */
  default: AuthMode;
  routes: RouteConfig[];
}

/** A validated config: safe to compile. */
export interface ValidConfig {
  projects: ProjectConfig[];
}

/** One problem found by validation, with where it is and how to fix it. */
export interface ConfigProblem {
  /** Location in the document, e.g. `projects[0].routes[2].path`. */
  at: string;
  message: string;
}

export type ValidationResult =
  | { ok: true; config: ValidConfig }
  | { ok: false; problems: ConfigProblem[] };

/**
 * Precompiled per-route policy: what the hot path evaluates. Frozen; one
 * object per rule so the verdict can point at the rule that decided it.
 */
export interface Policy {
  auth: AuthMode;
  allowUser: boolean;
  allowServiceAccount: boolean;
  /** null when no role is required. */
  roles: readonly string[] | null;
  /** null when no permission is required. */
  permissions: readonly string[] | null;
  /** Human-readable origin of the rule, for logs: `demo:/api/v1/*` or `demo:default`. */
  rule: string;
}

export interface CompiledProject {
  id: string;
  name: string;
  upstream: string;
  sessionAbsoluteMs: number;
  sessionIdleMs: number;
  /** Most specific rule for an already-normalized path and an upper-case method; never null (falls back to the default). */
  match(method: string, path: string): Policy;
}

export interface CompiledConfig {
  version: number;
  /** Lower-case host (no port, no trailing dot) → project. */
  hosts: ReadonlyMap<string, CompiledProject>;
  projects: ReadonlyMap<string, CompiledProject>;
}

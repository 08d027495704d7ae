/**
 * The document: the only way from unvalidated input (`unknown`, as YAML or
 * the Console hands it over) to a `ValidConfig`. It never throws and never
 * stops at the first mistake: every problem is reported with its location
 * (`projects[0].routes[2].path`) and a message that says how to fix it, so an
 * operator fixes a config in one round trip. The root holds the projects
 * (project.ts), the organizations, and the edge-wide sections (passwords.ts,
 * proxies.ts).
 */
import { LineCounter, parseDocument } from 'yaml';
import { DEFAULT_ORGANIZATION } from '../defaults.js';
import type { OrganizationConfig, ProjectConfig, ValidationResult } from '../types.js';
import { ROOT, checkKeys, describe, errorMessage, firstLine, isMapping, own, validateId, validateList, validateName, type Mapping, type Problems } from './fields.js';
import { validatePasswords } from './passwords.js';
import { validateProject } from './project.js';
import { validateTrustedProxies } from './proxies.js';

const ROOT_KEYS = ['organizations', 'projects', 'passwords', 'trusted_proxies'];
const ORGANIZATION_KEYS = ['id', 'name'];

/**
 * Validate an unvalidated config (the value parsed from YAML or JSON).
 * Returns every problem at once; never throws, whatever the input.
 */
export function validateConfig(input: unknown): ValidationResult {
  const problems: Problems = [];
  try {
    const root = validateRoot(input, problems);
    if (problems.length === 0 && root !== null) {
      const config: ValidationResult & { ok: true } = { ok: true, config: { projects: root.projects } };
      // Optional sections appear in the validated config only when written (their defaults apply at compile).
      const m = input as Mapping;
      if (own(m, 'organizations') !== undefined && own(m, 'organizations') !== null) config.config.organizations = root.organizations;
      const pw = own(m, 'passwords');
      if (pw !== undefined && pw !== null) config.config.passwords = validatePasswords(pw, 'passwords', problems) ?? undefined;
      const tp = own(m, 'trusted_proxies');
      if (tp !== undefined && tp !== null) config.config.trustedProxies = validateTrustedProxies(tp, 'trusted_proxies', problems) ?? undefined;
      if (problems.length === 0) return config;
    } else if (isMapping(input)) {
      // Still report the optional sections' problems alongside the projects'.
      const pw = own(input, 'passwords');
      if (pw !== undefined && pw !== null) validatePasswords(pw, 'passwords', problems);
      const tp = own(input, 'trusted_proxies');
      if (tp !== undefined && tp !== null) validateTrustedProxies(tp, 'trusted_proxies', problems);
    }
  } catch (err) {
    // Input from a caller other than YAML (getters, proxies) could still throw; fail closed.
    problems.push({
      at: ROOT,
      message: `config: validation failed on an unexpected value (${errorMessage(err)}); pass plain data`,
    });
  }
  if (problems.length === 0) problems.push({ at: ROOT, message: 'config: invalid config' });
  return { ok: false, problems };
}

/**
 * Parse YAML text and validate it. YAML syntax errors are reported as
 * problems with `at: 'yaml'` and the line and column in the message.
 */
export function parseConfigYaml(text: string): ValidationResult {
  if (typeof text !== 'string') {
    return { ok: false, problems: [{ at: 'yaml', message: 'config text must be a string' }] };
  }
  let value: unknown;
  try {
    const lineCounter = new LineCounter();
    // uniqueKeys: a key written twice (a pasted `id:`) is a mistake, not "last one wins".
    const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      return {
        ok: false,
        problems: doc.errors.map((e) => {
          const { line, col } = lineCounter.linePos(e.pos[0]);
          return { at: 'yaml', message: `line ${line}, column ${col}: ${firstLine(e.message)}` };
        }),
      };
    }
    // maxAliasCount bounds alias expansion ("billion laughs").
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, problems: [{ at: 'yaml', message: errorMessage(err) }] };
  }
  return validateConfig(value);
}

function validateRoot(input: unknown, problems: Problems): { projects: ProjectConfig[]; organizations: OrganizationConfig[] } | null {
  if (input === null || input === undefined) {
    problems.push({
      at: ROOT,
      message: 'the config is empty; write "projects: []" for a config with no projects',
    });
    return null;
  }
  if (!isMapping(input)) {
    problems.push({
      at: ROOT,
      message: `must be a mapping with a "projects" list (e.g. "projects: []"); got ${describe(input)}`,
    });
    return null;
  }
  checkKeys(input, ROOT_KEYS, '', problems);
  const raw = own(input, 'projects');
  if (raw === undefined) {
    problems.push({
      at: 'projects',
      message: 'is required; write "projects: []" for a config with no projects',
    });
    return null;
  }
  const notAList = 'must be a list of projects (write "projects: []" for none)';
  if (!Array.isArray(raw)) {
    problems.push({ at: 'projects', message: `${notAList}; got ${describe(raw)}` });
    return null;
  }
  const ids = new Map<string, string>(); // id → where first defined
  const hostOwners = new Map<string, { id: string; at: string }>();
  const rawOrgs = own(input, 'organizations');
  const orgs = rawOrgs === undefined || rawOrgs === null ? [] : validateOrganizations(rawOrgs, problems) ?? [];
  const orgIds = new Set([DEFAULT_ORGANIZATION, ...orgs.map((o) => o.id)]);
  const projects = validateList<ProjectConfig>(raw, 'projects', problems, { what: notAList }, (x, at) => {
    const project = validateProject(x, at, ids, hostOwners, problems);
    if (project === null) return null;
    if (project.organization !== undefined && !orgIds.has(project.organization)) {
      problems.push({
        at: `${at}.organization`,
        message: `names no organization; add { id: ${project.organization} } under "organizations", or remove it (projects belong to "${DEFAULT_ORGANIZATION}" by default)`,
      });
      return null;
    }
    return project;
  });
  if (projects === null) return null;
  return { projects, organizations: orgs };
}

/** `organizations: [{ id, name }]`: ids unique. */
function validateOrganizations(v: unknown, problems: Problems): OrganizationConfig[] | null {
  const seen = new Map<string, string>();
  return validateList<OrganizationConfig>(v, 'organizations', problems, { what: 'must be a list such as [{ id: acme, name: Acme Inc }]' }, (o, at) => {
    if (!isMapping(o)) {
      problems.push({ at, message: `must be a mapping such as { id: acme, name: Acme Inc }; got ${describe(o)}` });
      return null;
    }
    checkKeys(o, ORGANIZATION_KEYS, at, problems);
    const id = validateId(own(o, 'id'), `${at}.id`, 'organization id, e.g. "acme"', problems);
    const name = validateName(own(o, 'name'), `${at}.name`, problems);
    if (id === null) return null;
    const first = seen.get(id);
    if (first !== undefined) {
      problems.push({ at: `${at}.id`, message: `duplicates the id of ${first}; every organization needs its own id` });
      return null;
    }
    seen.set(id, at);
    return { id, name: name ?? id };
  });
}

/**
 * A project (`projects[]`): id, name, organization and directory scope, its
 * hosts (each belongs to one project), the upstream pool, session lifetimes,
 * the default for paths no rule covers, its routes, login and max_body.
 */
import { parseDuration } from '../../runtime/index.js';
import { parseConfigHost } from '../host.js';
import type { DirectoryScope, ProjectConfig } from '../types.js';
import { checkKeys, describe, formatMs, isMapping, own, validateDuration, validateId, validateList, validateName, type Problems } from './fields.js';
import { validateLogin } from './login.js';
import { validateAuthMode, validateMaxBody, validateRoutes } from './routes.js';

const PROJECT_KEYS = ['id', 'name', 'organization', 'directory', 'hosts', 'upstream', 'session', 'default', 'routes', 'login', 'max_body'];
const DIRECTORY_SCOPES: readonly DirectoryScope[] = ['project', 'organization'];
const SESSION_KEYS = ['absolute', 'idle'];
const DEFAULT_ABSOLUTE = '24h';
const DEFAULT_IDLE = '30m';

export function validateProject(
  input: unknown,
  at: string,
  ids: Map<string, string>,
  hostOwners: Map<string, { id: string; at: string }>,
  problems: Problems,
): ProjectConfig | null {
  if (!isMapping(input)) {
    problems.push({
      at,
      message: `must be a mapping with at least id, hosts and upstream; got ${describe(input)}`,
    });
    return null;
  }
  const before = problems.length;
  checkKeys(input, PROJECT_KEYS, at, problems);

  const id = validateId(own(input, 'id'), `${at}.id`, 'project id, e.g. "demo"', problems);
  if (id !== null) {
    const first = ids.get(id);
    if (first !== undefined) {
      problems.push({
        at: `${at}.id`,
        message: `duplicates the id of ${first}; every project needs its own id`,
      });
    } else {
      ids.set(id, at);
    }
  }
  const label = id ?? at;

  const name = validateName(own(input, 'name'), `${at}.name`, problems);
  const rawOrg = own(input, 'organization');
  const organization = rawOrg === undefined || rawOrg === null ? undefined : validateId(rawOrg, `${at}.organization`, 'organization id, e.g. "acme"', problems);
  const rawDir = own(input, 'directory');
  let directory: DirectoryScope | undefined;
  if (rawDir !== undefined && rawDir !== null) {
    if (typeof rawDir === 'string' && (DIRECTORY_SCOPES as readonly string[]).includes(rawDir)) directory = rawDir as DirectoryScope;
    else problems.push({ at: `${at}.directory`, message: `must be one of ${DIRECTORY_SCOPES.join(', ')} (whose user directory the project signs users in with); got ${describe(rawDir)}` });
  }
  const hosts = validateHosts(own(input, 'hosts'), `${at}.hosts`, label, hostOwners, problems);
  const upstream = validateId(
    own(input, 'upstream'),
    `${at}.upstream`,
    'Warpgate pool name, e.g. "demo"',
    problems,
  );
  const session = validateSession(own(input, 'session'), `${at}.session`, problems);
  const defaultMode = validateAuthMode(own(input, 'default'), `${at}.default`, problems);
  const routes = validateRoutes(own(input, 'routes'), `${at}.routes`, problems);
  const maxBody = validateMaxBody(own(input, 'max_body'), `${at}.max_body`, problems);
  const rawLogin = own(input, 'login');
  const login = rawLogin === undefined || rawLogin === null ? undefined : validateLogin(rawLogin, `${at}.login`, problems);

  if (
    problems.length !== before ||
    id === null ||
    hosts === null ||
    upstream === null ||
    session === null ||
    defaultMode === null ||
    routes === null
  ) {
    return null;
  }
  const project: ProjectConfig = {
    id,
    name: name ?? id,
    hosts,
    upstream,
    session,
    default: defaultMode,
    routes,
  };
  if (login !== undefined && login !== null) project.login = login;
  if (maxBody !== undefined) project.maxBody = maxBody;
  if (organization !== undefined && organization !== null) project.organization = organization;
  if (directory !== undefined) project.directory = directory;
  return project;
}

function validateHosts(
  v: unknown,
  at: string,
  projectLabel: string,
  owners: Map<string, { id: string; at: string }>,
  problems: Problems,
): string[] | null {
  if (v === undefined || v === null) {
    problems.push({ at, message: 'is required: a list of host names, e.g. [app.example.com]' });
    return null;
  }
  const shape = { what: 'must be a list of host names, e.g. [app.example.com]', empty: 'must list at least one host name' };
  return validateList<string>(v, at, problems, shape, (x, hostAt) => {
    if (typeof x !== 'string') {
      problems.push({ at: hostAt, message: `must be a host name such as app.example.com; got ${describe(x)}` });
      return null;
    }
    const parsed = parseConfigHost(x);
    if ('problem' in parsed) {
      problems.push({ at: hostAt, message: parsed.problem });
      return null;
    }
    const host = parsed.host;
    const owner = owners.get(host);
    if (owner !== undefined) {
      problems.push({
        at: hostAt,
        message:
          owner.id === projectLabel
            ? `"${host}" is listed twice (first at ${owner.at}); remove one`
            : `"${host}" already belongs to project "${owner.id}" (${owner.at}); a host may belong to only one project`,
      });
      return null;
    }
    owners.set(host, { id: projectLabel, at: hostAt });
    return host;
  });
}


function validateSession(
  v: unknown,
  at: string,
  problems: Problems,
): ProjectConfig['session'] | null {
  if (v === undefined || v === null) {
    return {
      absoluteMs: parseDuration(DEFAULT_ABSOLUTE) as number,
      idleMs: parseDuration(DEFAULT_IDLE) as number,
    };
  }
  if (!isMapping(v)) {
    problems.push({
      at,
      message: `must be a mapping such as { absolute: 24h, idle: 30m }, or be removed for those defaults; got ${describe(v)}`,
    });
    return null;
  }
  checkKeys(v, SESSION_KEYS, at, problems);
  const absoluteMs = validateDuration(own(v, 'absolute'), `${at}.absolute`, DEFAULT_ABSOLUTE, problems);
  const idleMs = validateDuration(own(v, 'idle'), `${at}.idle`, DEFAULT_IDLE, problems);
  if (absoluteMs === null || idleMs === null) return null;
  if (idleMs > absoluteMs) {
    problems.push({
      at: `${at}.idle`,
      message: `must not be longer than session.absolute (${formatMs(idleMs)} > ${formatMs(absoluteMs)}${
        own(v, 'absolute') === undefined ? ', the default' : ''
      }); lower idle or raise absolute`,
    });
    return null;
  }
  return { absoluteMs, idleMs };
}

/**
 * Edits of the applied config made by the Console and the API (a project's
 * routes, a new organization or project). The YAML text stays the source of
 * truth: an edit parses the applied text as a YAML document, changes only the
 * node it is about (comments and the rest of the layout survive), then the
 * whole result is validated exactly like `mezusphere apply` and stored as the
 * next version with a compare-and-swap on the version it was based on.
 */
import { isMap, isSeq, parseDocument, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import type { ConfigProblem } from '../config/index.js';

/** A route as the API and the Console pages carry it (the YAML keys of a rule). */
export interface RouteInput {
  path: unknown;
  auth?: unknown;
  methods?: unknown;
  principals?: unknown;
  roles?: unknown;
  permissions?: unknown;
}

export interface ProjectInput {
  id: unknown;
  name?: unknown;
  organization?: unknown;
  directory?: unknown;
  hosts: unknown;
  upstream: unknown;
  default?: unknown;
}

export type EditResult = { ok: true; text: string } | { ok: false; problems: ConfigProblem[] };

function load(text: string): Document {
  return parseDocument(text === '' ? 'projects: []\n' : text);
}

function projectsSeq(doc: Document): YAMLSeq | null {
  const p = doc.get('projects');
  return isSeq(p) ? p : null;
}

/** Index of the project `id` in the document's `projects` list, or -1. */
export function projectIndex(doc: Document, id: string): number {
  const seq = projectsSeq(doc);
  if (seq === null) return -1;
  return seq.items.findIndex((it) => isMap(it) && (it as YAMLMap).get('id') === id);
}

/** Drops keys whose value is absent, so a rule reads as it would be written by hand. */
function compact(r: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v) && v.length === 0 && k !== 'hosts') continue;
    if (v === '' && k !== 'path') continue;
    out[k] = v;
  }
  return out;
}

/** Replaces project `projectId`'s routes. Problems are located as `routes[i].field` (relative to the project). */
export function setRoutes(text: string, projectId: string, routes: RouteInput[]): EditResult & { index?: number } {
  const doc = load(text);
  const i = projectIndex(doc, projectId);
  if (i < 0) return { ok: false, problems: [{ at: 'project', message: `no project "${projectId}" in the applied config` }] };
  const items = routes.map((r) => {
    const node = doc.createNode(compact({ path: r.path, auth: r.auth ?? 'required', methods: r.methods, principals: r.principals, roles: r.roles, permissions: r.permissions }));
    (node as YAMLMap).flow = true;
    return node;
  });
  const seq = doc.createNode([]) as YAMLSeq;
  seq.items = items;
  doc.setIn(['projects', i, 'routes'], seq);
  return { ok: true, text: doc.toString({ lineWidth: 0 }), index: i };
}

/** Adds an organization (`organizations:` is created when missing). */
export function addOrganization(text: string, org: { id: unknown; name?: unknown }): EditResult {
  const doc = load(text);
  const node = doc.createNode(compact({ id: org.id, name: org.name }));
  (node as YAMLMap).flow = true;
  const cur = doc.get('organizations');
  if (isSeq(cur)) cur.items.push(node);
  else {
    const seq = doc.createNode([]) as YAMLSeq;
    seq.items = [node];
    // First in the document: organizations read before the projects that name them.
    const root = doc.contents as YAMLMap;
    if (isMap(root)) {
      root.items.unshift(doc.createPair('organizations', seq));
    } else doc.set('organizations', seq);
  }
  return { ok: true, text: doc.toString({ lineWidth: 0 }) };
}

/** Adds a project with no routes (its `default` decides until routes are added). */
export function addProject(text: string, p: ProjectInput): EditResult {
  const doc = load(text);
  const node = doc.createNode(
    compact({ id: p.id, name: p.name, organization: p.organization, directory: p.directory, hosts: p.hosts, upstream: p.upstream, default: p.default, routes: [] }),
  ) as YAMLMap;
  const hosts = node.get('hosts');
  if (isSeq(hosts)) hosts.flow = true;
  const cur = projectsSeq(doc);
  if (cur !== null) cur.items.push(node);
  else doc.set('projects', doc.createNode([node]));
  return { ok: true, text: doc.toString({ lineWidth: 0 }) };
}

/**
 * Problems of the whole config → problems of one project's routes, located
 * relative to the project (`routes[2].path`), so a form can show each at its
 * field. Problems elsewhere keep their absolute location.
 */
export function relativeProblems(problems: ConfigProblem[], index: number): ConfigProblem[] {
  const prefix = `projects[${index}].`;
  return problems.map((p) => (p.at.startsWith(prefix) ? { at: p.at.slice(prefix.length), message: p.message } : p));
}

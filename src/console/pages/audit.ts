/** The audit log, newest first, a page at a time, filtered by action. */
import { esc, when, table, field } from '../html.js';
import { enc, html, framed, type Ctx, type Reply } from './context.js';

/** `/audit`: null when the path names no such page. */
export async function route(c: Ctx, seg: string[], post: boolean): Promise<Reply | null> {
  return seg.length === 1 && !post ? audit(c) : null;
}

async function audit(c: Ctx): Promise<Reply> {
  const query: Record<string, string> = { limit: '50' };
  const cur = c.req.query.get('cursor');
  if (cur !== null && cur !== '') query.cursor = cur;
  const action = c.req.query.get('action') ?? '';
  if (action !== '') query.action = action;
  const page = (await c.call('GET', '/api/v1/audit', undefined, query)) as { items: Array<Record<string, any>>; next_cursor: string | null };
  const rows = page.items.map((a) => [
    when(a.at),
    `${esc(a.actor.name)}<br><span class="muted">${esc(a.actor.type)}</span>`,
    `<code>${esc(a.action)}</code>`,
    `${esc(a.target.type)} <code>${esc(a.target.id)}</code>`,
    esc(a.project ?? ''),
    `<code>${esc(JSON.stringify(a.details)).slice(0, 400)}</code>`,
  ]);
  const filter = `<form method="get" action="/audit" class="row">${field('action', 'Action (e.g. user, key.revoke)', action)}<div><button type="submit" class="quiet">Filter</button></div></form>`;
  const more = page.next_cursor === null ? '' : `<p><a href="/audit?cursor=${enc(page.next_cursor)}${action === '' ? '' : `&amp;action=${enc(action)}`}">Older entries</a></p>`;
  return html(200, framed(c, { title: 'Audit log', current: 'audit', body: `<section>${filter}</section><section>${table(['When', 'Who', 'Action', 'Object', 'Project', 'Details'], rows, 'No changes recorded yet.')}${more}</section>` }));
}

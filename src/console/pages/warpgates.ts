/** The Warpgates: enrolled or statically provisioned, connected or not, which edge workers hold their tunnels. */
import { esc, badge, when, table } from '../html.js';
import { html, framed, type Ctx, type Reply } from './context.js';

/** `/warpgates`: null when the path names no such page. */
export async function route(c: Ctx, seg: string[], post: boolean): Promise<Reply | null> {
  return seg.length === 1 && !post ? warpgates(c) : null;
}

async function warpgates(c: Ctx): Promise<Reply> {
  const items = ((await c.call('GET', '/api/v1/warpgates')) as { items: Array<Record<string, any>> }).items;
  const rows = items.map((w) => [
    `<code>${esc(w.id)}</code>${w.hostname ? `<br><span class="muted">${esc(w.hostname)}</span>` : ''}`,
    esc(w.project ?? ''),
    `<code>${esc(w.pool)}</code>`,
    w.connected ? `${badge('connected')}<br><span class="muted">since ${when(w.connected_since)}</span>` : w.refused_at !== null ? `${badge('revoked')}<br><span class="muted">key refused ${when(w.refused_at)}</span>` : badge('disconnected'),
    esc(w.version ?? ''),
    w.tunnels.length === 0 ? '<span class="muted">none</span>' : esc((w.tunnels as Array<{ edge: string; worker: number }>).map((t) => `${t.edge.slice(0, 6)}/w${t.worker}`).join(', ')),
    w.key === null ? '<span class="muted">static certificate</span>' : `<code>mzk_${esc(w.key)}</code>`,
    w.certificate_expires_at === null ? '' : when(w.certificate_expires_at),
  ]);
  const body = `<section>${table(['Warpgate', 'Project', 'Pool', 'Connection', 'Version', 'Edge workers holding tunnels', 'Key', 'Certificate expires'], rows, 'No Warpgate has enrolled or connected yet.')}<p class="muted">Enroll one with <code>warpgate --edge ${esc(c.publicUrl)} --key mzk_… --origin http://127.0.0.1:3000</code> (a key with the warpgates:enroll permission).</p></section>`;
  return html(200, framed(c, { title: 'Warpgates', current: 'warpgates', body }));
}

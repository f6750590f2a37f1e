// Links: each link's state and backlog, its partitions (forwarded offset,
// backlog in records, bytes and seconds, state and last error, producer,
// dropped, resets, bytes sent) and pause/resume. Dropped records and a
// failing partition are shown as alerts.
import { useState } from '../../vendor/hooks.mjs'
import { tget, tcall } from '../api.js'
import { html, useLoad, bytes, num, ErrorBox, link } from '../ui.js'

export function Links ({ me, tenant }) {
  const admin = me.operator || me.admin
  const [d, error, reload] = useLoad(() => admin ? tget('links') : Promise.resolve({ links: [] }), [tenant], 3000)
  if (!admin) return html`<h1>Links</h1><p>Links need the tenant's admin scope.</p>`
  const list = (d && d.links) || []
  return html`
    <h1>Links</h1>
    <${ErrorBox} error=${error} />
    ${d && list.length === 0 ? html`<p>No links. <code>eddy link create</code> forwards topics to another Eddy or any Kafka cluster (docs/links.md).</p>` : ''}
    ${list.map(l => html`<${Link} name=${l.name} tenant=${tenant} onChange=${reload} />`)}`
}

const stateClass = s => s === 'connected' ? '' : 'warn'

function Link ({ name, tenant, onChange }) {
  const [l, error, reload] = useLoad(() => tget('links/' + encodeURIComponent(name)), [tenant, name], 3000)
  const [actErr, setActErr] = useState(null)
  if (!l) return html`<${ErrorBox} error=${error} />`
  const act = a => tcall('POST', 'links/' + encodeURIComponent(name) + '/' + a).then(() => { reload(); onChange() }, setActErr)
  const t = l.totals
  return html`
    <section class="module" data-testid=${'link-' + name}>
      <h2>${name} <small class=${stateClass(l.state)} data-testid="link-state">${l.state}</small>
        ${l.paused ? html`<button class="link" onClick=${() => act('resume')} data-testid="link-resume">resume</button>`
                   : html`<button class="link" onClick=${() => act('pause')} data-testid="link-pause">pause</button>`}</h2>
      <p>to <code>${l.to.join(', ')}</code>${l.target_prefix ? html`, topics prefixed <code>${l.target_prefix}</code>` : ''};
        topics <code>${l.topics.join(', ')}</code>${l.priority && l.priority.length ? html`, first <code>${l.priority.join(', ')}</code>` : ''};${' '}
        ${l.compression || 'no'} compression${l.max_bytes_per_sec ? html`, at most ${bytes(l.max_bytes_per_sec)}/s` : ''}</p>
      <p data-testid="link-totals">backlog ${num(t.backlog_records)} records, ${bytes(t.backlog_bytes)}, ${t.backlog_seconds.toFixed(0)} s;
        sent ${bytes(t.bytes_sent)}; producer resets ${num(t.resets)}</p>
      ${t.dropped > 0 ? html`<div class="error" role="alert" data-testid="link-dropped"><b>dropped</b> ${num(t.dropped)} unsent records past the backlog caps</div>` : ''}
      <${ErrorBox} error=${error || actErr} />
      <table><thead><tr><th>topic</th><th>partition</th><th>end</th><th>forwarded</th><th>backlog</th><th>age</th><th>state</th><th>node</th><th>producer</th><th>dropped</th><th>sent</th><th>error</th></tr></thead>
        <tbody>${(l.partitions || []).map(p => html`<tr data-testid=${'link-part-' + p.topic + '-' + p.partition}>
          <td><a href=${link('topics/' + p.topic)}>${p.topic}</a></td><td>${p.partition}</td><td>${num(p.end)}</td><td>${num(p.forwarded)}</td>
          <td>${num(p.backlog_records)} (${bytes(p.backlog_bytes)})</td><td>${p.backlog_seconds.toFixed(0)} s</td>
          <td class=${stateClass(p.state)}>${p.state}</td><td>${p.node || '–'}</td><td><code>${p.producer_id}/${p.producer_epoch}@${p.sequence}</code></td>
          <td class=${p.dropped ? 'warn' : ''}>${num(p.dropped)}</td><td>${bytes(p.bytes_sent)}</td><td>${p.error || ''}</td></tr>`)}</tbody></table>
    </section>`
}

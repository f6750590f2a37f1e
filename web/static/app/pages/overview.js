// Overview: is everything well, and what needs a look. Alerts come from
// the same answers the other pages show: partitions without a leader,
// transforms whose breaker is open, groups falling behind, bridges down,
// a node not ready.
import { api, tget } from '../api.js'
import { html, useLoad, num, bytes, ErrorBox, link } from '../ui.js'
import { Chart } from '../chart.js'

async function loadOverview (me) {
  const [topics, groups, ready, lags] = await Promise.all([
    tget('topics?detail=true'),
    tget('groups').catch(() => ({ groups: [] })),
    fetch(new URL('../readyz', document.baseURI)).then(r => r.json()),
    tget('series?name=group_lag&since_ms=' + (Date.now() - 600000)).catch(() => ({ series: [] }))
  ])
  let cluster = null
  let bridges = null
  if (me.operator) {
    [cluster, bridges] = await Promise.all([api('GET', 'v1/cluster'), api('GET', 'v1/bridges')])
  }
  return { topics: topics.topics, groups: groups.groups || [], ready, cluster, bridges, lags: lags.series || [] }
}

export function alerts (d) {
  const out = []
  if (d.ready && d.ready.status !== 'ready') out.push(['node', 'not ready: ' + (d.ready.reason || d.ready.status)])
  for (const t of d.topics) {
    for (const p of t.partition_info || []) {
      if (!p.leader) out.push([t.name, 'partition ' + p.partition + ' has no leader (no quorum)', link('topics/' + t.name)])
      if (p.error) out.push([t.name, 'partition ' + p.partition + ': ' + p.error, link('topics/' + t.name)])
    }
    const st = t.transform && t.transform.status
    if (st && st.breaker && st.breaker !== 'closed') out.push([t.name, 'transform breaker ' + st.breaker + (st.last_error ? ': ' + st.last_error : ''), link('transforms')])
  }
  // A group whose lag grew over the last minutes (the sampler's series).
  for (const s of d.lags) {
    const v = s.values.filter(x => x !== null)
    if (v.length >= 2 && v[v.length - 1] > v[0]) {
      out.push([s.subject, 'lag growing: ' + num(v[0]) + ' → ' + num(v[v.length - 1]) + ' records in ' + Math.round((v.length - 1) * s.step_ms / 60000) + ' min', link('groups/' + s.subject)])
    }
  }
  for (const n of (d.cluster && d.cluster.nodes) || []) {
    if (!n.alive) out.push(['node ' + n.id, 'not reachable'])
    if (n.storage_full) out.push(['node ' + n.id, 'disk full: writes are refused (' + bytes(n.disk_free_bytes) + ' free)'])
    else if (n.disk_keep_free_bytes && n.disk_free_bytes < 2 * n.disk_keep_free_bytes) out.push(['node ' + n.id, 'disk nearly full: ' + bytes(n.disk_free_bytes) + ' free; writes stop below ' + bytes(n.disk_keep_free_bytes)])
  }
  for (const b of (d.bridges && d.bridges.bridges) || []) {
    if (!b.connected) out.push(['bridge ' + (b.name || b.url || ''), 'disconnected' + (b.last_error ? ': ' + b.last_error : '')])
  }
  return out
}

export function Overview ({ me, tenant }) {
  const [d, error] = useLoad(() => loadOverview(me), [tenant], 5000)
  if (error) return html`<${ErrorBox} error=${error} />`
  if (!d) return html`<p>Loading…</p>`
  let records = 0
  let size = 0
  let partitions = 0
  for (const t of d.topics) {
    for (const p of t.partition_info || []) { records += p.high_watermark - p.log_start_offset; size += p.size_bytes || 0; partitions++ }
  }
  const list = alerts(d)
  return html`
    <h1>Overview <small>tenant ${tenant}</small></h1>
    <section class="cards">
      <div class="card" data-testid="card-ready"><b>${d.ready.status}</b><span>node</span></div>
      <div class="card"><b>${num(d.topics.length)}</b><span>topics</span></div>
      <div class="card" data-testid="card-partitions"><b>${num(partitions)}</b><span>partitions</span></div>
      <div class="card"><b>${num(records)}</b><span>records kept</span></div>
      <div class="card"><b>${bytes(size)}</b><span>stored</span></div>
      <div class="card"><b>${num(d.groups.length)}</b><span>groups</span></div>
      ${d.cluster ? html`<div class="card"><b>${d.cluster.nodes.filter(n => n.alive).length}/${d.cluster.nodes.length}</b><span>nodes up</span></div>` : ''}
    </section>
    <${Chart} query="name=produce_records" title="Records in, per second, by topic" unit="records/s" tenant=${tenant} testid="chart-produce" />
    <h2>Alerts</h2>
    ${list.length === 0
      ? html`<p data-testid="no-alerts">Nothing needs a look.</p>`
      : html`<ul class="alerts" data-testid="alerts">${list.map(([what, msg, href]) => html`<li><b>${what}</b> ${href ? html`<a href=${href}>${msg}</a>` : msg}</li>`)}</ul>`}`
}

// Consumer groups: the list with lag, and a group's page: members,
// per-partition committed / end / lag in records and in time, resetting
// offsets (only while the group is empty; the server refuses otherwise),
// deleting the offsets of a topic no member reads, deleting the group.
import { useState } from '../../vendor/hooks.mjs'
import { tget, tcall } from '../api.js'
import { html, useLoad, num, duration, ago, ErrorBox, link, go } from '../ui.js'
import { Chart } from '../chart.js'

export function Groups ({ tenant }) {
  const [d, error] = useLoad(() => tget('groups'), [tenant], 5000)
  return html`
    <h1>Consumer groups</h1>
    <${ErrorBox} error=${error} />
    ${d && html`<table data-testid="groups">
      <thead><tr><th>group</th><th>protocol</th><th>members</th><th>generation</th></tr></thead>
      <tbody>${d.groups.map(g => html`<tr data-testid=${'group-' + g.name}><td><a href=${link('groups/' + g.name)}>${g.name}</a></td>
        <td>${g.protocol}</td><td>${g.members}</td><td>${g.generation}</td></tr>`)}</tbody>
    </table>
    ${d.groups.length === 0 ? html`<p>No groups yet.</p>` : ''}`}`
}

export function Group ({ me, tenant, name }) {
  const [g, error, reload] = useLoad(() => tget('groups/' + encodeURIComponent(name)), [tenant, name], 5000)
  if (error) return html`<${ErrorBox} error=${error} />`
  if (!g) return html`<p>Loading…</p>`
  const del = () => {
    if (confirm('Delete group ' + name + ' and its committed offsets?')) tcall('DELETE', 'groups/' + encodeURIComponent(name)).then(() => go('groups'), alert)
  }
  const topics = [...new Set(g.partitions.map(p => p.topic))]
  // A topic a member subscribes to or is assigned keeps its offsets (the
  // server answers 409); the others' can go, and their lag with them. A
  // group left with neither members nor offsets is gone.
  const read = new Set((g.member_list || []).flatMap(m => [...(m.topics || []), ...(m.assignments || []).map(a => a.topic)]))
  const forget = t => {
    if (!confirm('Delete the offsets group ' + name + ' committed for ' + t + '? Its lag there goes with them.')) return
    const gone = g.members === 0 && topics.length === 1
    tcall('DELETE', 'groups/' + encodeURIComponent(name) + '/offsets?topic=' + encodeURIComponent(t)).then(() => gone ? go('groups') : reload(), alert)
  }
  const topicLag = t => g.partitions.filter(p => p.topic === t).reduce((sum, p) => sum + (p.lag || 0), 0)
  return html`
    <h1>Group ${name} <small>${g.protocol}, generation ${g.generation}</small></h1>
    <section class="cards">
      <div class="card"><b data-testid="group-lag">${num(g.lag)}</b><span>records behind</span></div>
      <div class="card"><b data-testid="group-lag-ms">${duration(g.lag_ms)}</b><span>behind in time</span></div>
      <div class="card"><b>${g.members}</b><span>members</span></div>
    </section>
    <${Chart} query=${'name=group_lag&group=' + encodeURIComponent(name)} title="Lag in records, last hour" unit="records" tenant=${tenant} testid="chart-lag" />
    <${Chart} query=${'name=group_lag_ms&group=' + encodeURIComponent(name)} title="Lag in time, last hour" unit="ms" tenant=${tenant} testid="chart-lag-ms" />
    <h2>Partitions</h2>
    <table data-testid="group-partitions">
      <thead><tr><th>topic</th><th>partition</th><th>committed</th><th>end</th><th>lag</th><th>lag in time</th><th>member</th></tr></thead>
      <tbody>${g.partitions.map(p => html`<tr><td>${p.topic}</td><td>${p.partition}</td><td>${p.committed_offset === null ? 'none' : num(p.committed_offset)}</td>
        <td>${num(p.high_watermark)}</td><td>${num(p.lag)}</td><td>${duration(p.lag_ms)}</td><td>${p.member || ''}</td></tr>`)}</tbody>
    </table>
    <h2>Topics</h2>
    <table data-testid="group-topics">
      <thead><tr><th>topic</th><th>lag</th><th></th></tr></thead>
      <tbody>${topics.map(t => html`<tr><td>${t}</td><td>${num(topicLag(t))}</td>
        <td><button onClick=${() => forget(t)} disabled=${read.has(t)} title=${read.has(t) ? 'a member reads it' : 'the group no longer reads it'} data-testid=${'forget-' + t}>Delete offsets</button></td></tr>`)}</tbody>
    </table>
    <h2>Members</h2>
    <table><thead><tr><th>member</th><th>topics</th><th>partitions</th><th>last seen</th></tr></thead>
      <tbody>${(g.member_list || []).map(m => html`<tr><td>${m.member_id}${m.instance_id ? ' (' + m.instance_id + ')' : ''}</td>
        <td>${(m.topics || []).join(', ')}</td><td>${(m.assignments || []).map(a => a.topic + '/' + a.partition).join(' ')}</td><td>${ago(m.last_seen_ms)}</td></tr>`)}</tbody></table>
    ${g.members === 0 ? html`<${Reset} name=${name} topics=${topics} partitions=${g.partitions} onDone=${reload} />` : html`<p class="hint">Offsets can be reset once the group is empty.</p>`}
    <p><button class="danger" onClick=${del} disabled=${g.members > 0} data-testid="delete-group">Delete group</button></p>`
}

function Reset ({ name, topics, partitions, onDone }) {
  const [topic, setTopic] = useState(topics[0] || '')
  const [to, setTo] = useState('earliest')
  const [value, setValue] = useState('')
  const [error, setError] = useState(null)
  const [preview, setPreview] = useState(null)
  const body = () => {
    const b = { topic, to }
    if (to === 'offset') b.offset = Number(value)
    if (to === 'timestamp') b.timestamp_ms = new Date(value).getTime()
    return b
  }
  // The preview: what each partition would move to, read from the offsets
  // endpoints (by time through the time index), before anything changes.
  const look = async e => {
    e.preventDefault()
    try {
      const rows = await Promise.all(partitions.filter(p => p.topic === topic).map(async p => {
        const q = to === 'timestamp' ? '?timestamp=' + new Date(value).getTime() : ''
        const o = await tget('topics/' + encodeURIComponent(topic) + '/partitions/' + p.partition + '/offsets' + q)
        const target = to === 'earliest' ? o.earliest : to === 'latest' ? o.latest : to === 'offset' ? Math.min(Math.max(Number(value), o.earliest), o.latest) : o.offset
        return { partition: p.partition, from: p.committed_offset, to: target, lag: o.latest - target }
      }))
      setPreview(rows)
      setError(null)
    } catch (err) { setError(err) }
  }
  const apply = () => tcall('POST', 'groups/' + encodeURIComponent(name) + '/offsets', body()).then(() => { setPreview(null); onDone() }, setError)
  return html`
    <h2>Reset offsets</h2>
    <form class="inline" onSubmit=${look} data-testid="reset">
      <select value=${topic} onChange=${e => setTopic(e.target.value)}>${topics.map(t => html`<option>${t}</option>`)}</select>
      <select value=${to} onChange=${e => setTo(e.target.value)} data-testid="reset-to">
        <option value="earliest">earliest</option><option value="latest">latest</option>
        <option value="timestamp">time</option><option value="offset">offset</option>
      </select>
      ${to === 'offset' ? html`<input type="number" min="0" value=${value} onInput=${e => setValue(e.target.value)} />` : ''}
      ${to === 'timestamp' ? html`<input type="datetime-local" step="1" value=${value} onInput=${e => setValue(e.target.value)} />` : ''}
      <button data-testid="reset-preview">Preview</button>
    </form>
    <${ErrorBox} error=${error} />
    ${preview && html`<table data-testid="reset-table"><thead><tr><th>partition</th><th>committed now</th><th>would be</th><th>lag then</th></tr></thead>
      <tbody>${preview.map(r => html`<tr><td>${r.partition}</td><td>${r.from === null ? 'none' : num(r.from)}</td><td>${num(r.to)}</td><td>${num(r.lag)}</td></tr>`)}</tbody></table>
      <button onClick=${apply} data-testid="reset-apply">Apply</button>`}`
}

// Topics: the list with sizes, creating one, and a topic's page:
// partitions (offsets, leader, replicas, size), its config (retention
// editable), its transform, and a produce form.
import { useState } from '../../vendor/hooks.mjs'
import { tget, tcall } from '../api.js'
import { html, useLoad, num, bytes, time, ErrorBox, link, go } from '../ui.js'
import { Chart } from '../chart.js'

const canAdmin = me => me.operator || me.admin

export function Topics ({ me, tenant }) {
  const [d, error, reload] = useLoad(() => tget('topics?detail=true'), [tenant], 10000)
  return html`
    <h1>Topics</h1>
    ${canAdmin(me) ? html`<${CreateTopic} onCreated=${reload} />` : ''}
    <${ErrorBox} error=${error} />
    ${d && html`
      <table data-testid="topics">
        <thead><tr><th>topic</th><th>partitions</th><th>RF</th><th>records</th><th>size</th><th>retention</th><th>transform</th></tr></thead>
        <tbody>${d.topics.map(t => {
          const parts = t.partition_info || []
          const recs = parts.reduce((n, p) => n + p.high_watermark - p.log_start_offset, 0)
          const size = parts.reduce((n, p) => n + (p.size_bytes || 0), 0)
          return html`<tr data-testid=${'topic-' + t.name}>
            <td><a href=${link('topics/' + t.name)}>${t.name}</a></td><td>${t.partitions}</td><td>${t.replication_factor}</td>
            <td>${num(recs)}</td><td>${bytes(size)}</td><td>${retention(t.config)}</td>
            <td>${t.transform ? t.transform.module + ' v' + (t.transform.runs_version || t.transform.version) : ''}</td></tr>`
        })}</tbody>
      </table>
      ${d.topics.length === 0 ? html`<p>No topics yet.</p>` : ''}`}`
}

// retention says how long records stay: by time, and for a compacted
// topic (cleanup.policy compact) that each key keeps its newest.
function retention (cfg) {
  const policy = cfg['cleanup.policy'] || 'delete'
  if (policy === 'compact') return 'newest per key'
  const ms = Number(cfg['retention.ms'])
  const time = ms < 0 ? 'forever' : ms % 86400000 === 0 ? ms / 86400000 + ' d' : ms % 3600000 === 0 ? ms / 3600000 + ' h' : ms + ' ms'
  return policy.includes('compact') ? time + ', newest per key' : time
}

function CreateTopic ({ onCreated }) {
  const [name, setName] = useState('')
  const [parts, setParts] = useState(1)
  const [rf, setRF] = useState(1)
  const [error, setError] = useState(null)
  const submit = e => {
    e.preventDefault()
    tcall('POST', 'topics', { name, partitions: Number(parts), replication_factor: Number(rf) })
      .then(() => { setName(''); setError(null); onCreated() }, setError)
  }
  return html`
    <form class="inline" onSubmit=${submit} data-testid="create-topic">
      <input placeholder="new topic" value=${name} onInput=${e => setName(e.target.value)} data-testid="new-topic-name" required />
      <label>partitions <input type="number" min="1" max="256" value=${parts} onInput=${e => setParts(e.target.value)} data-testid="new-topic-partitions" /></label>
      <label>RF <select value=${rf} onChange=${e => setRF(e.target.value)}><option>1</option><option>3</option><option>5</option></select></label>
      <button data-testid="create-topic-submit">Create</button>
      <${ErrorBox} error=${error} />
    </form>`
}

export function Topic ({ me, tenant, name }) {
  const [t, error, reload] = useLoad(() => tget('topics/' + encodeURIComponent(name)), [tenant, name], 5000)
  if (error) return html`<${ErrorBox} error=${error} />`
  if (!t) return html`<p>Loading…</p>`
  const del = () => {
    if (confirm('Delete topic ' + name + ' and all its records?')) tcall('DELETE', 'topics/' + encodeURIComponent(name)).then(() => go('topics'), alert)
  }
  return html`
    <h1>Topic ${name} <small>${t.partitions} partitions, RF ${t.replication_factor}, created ${time(t.created_ms)}</small></h1>
    <p class="actions">
      <a href=${link('records/' + name)} data-testid="browse">Browse records</a>
      <a href=${link('tail/' + name)} data-testid="tail">Live tail</a>
      ${canAdmin(me) ? html`<button class="danger" onClick=${del} data-testid="delete-topic">Delete topic</button>` : ''}
    </p>
    <${Chart} query=${'topic=' + encodeURIComponent(name)} title="Records and bytes per second, in and out" unit="per second" tenant=${tenant} testid="chart-topic" />
    <h2>Partitions</h2>
    <table data-testid="partitions">
      <thead><tr><th>partition</th><th>log start</th><th>high watermark</th><th>records</th><th>leader</th><th>replicas</th><th>size</th></tr></thead>
      <tbody>${(t.partition_info || []).map(p => html`<tr class=${p.leader ? '' : 'warn'}>
        <td><a href=${link('records/' + name + '/' + p.partition)}>${p.partition}</a></td><td>${num(p.log_start_offset)}</td>
        <td>${num(p.high_watermark)}</td><td>${num(p.high_watermark - p.log_start_offset)}</td>
        <td>${p.leader || 'none'}</td><td>${(p.replicas || []).join(', ')}</td><td>${bytes(p.size_bytes)}</td></tr>`)}</tbody>
    </table>
    ${me.operator || me.admin || (me.scopes || []).some(s => s.startsWith('produce:')) ? html`<${Produce} topic=${name} partitions=${t.partitions} onDone=${reload} />` : ''}
    <${Config} topic=${t} editable=${canAdmin(me)} onSaved=${reload} />
    ${t.transform ? html`<h2>Transform</h2><p>${t.transform.module} version ${t.transform.runs_version || t.transform.version}
      (on error: ${t.transform.on_error || 'reject'}${t.transform.dead_letter_topic ? ', dead letters to ' + t.transform.dead_letter_topic : ''})</p>
      <${TransformNodes} tenant=${tenant} name=${name} />` : ''}`
}

function Produce ({ topic, partitions, onDone }) {
  const [key, setKey] = useState('')
  const [value, setValue] = useState('')
  const [enc, setEnc] = useState('json')
  const [part, setPart] = useState('')
  const [headers, setHeaders] = useState('')
  const [out, setOut] = useState(null)
  const [error, setError] = useState(null)
  const submit = e => {
    e.preventDefault()
    const rec = {}
    if (key) rec.key = key
    try {
      if (enc === 'json') rec.value = JSON.parse(value)
      else rec.value = value
      if (enc === 'base64') rec.value_encoding = 'base64'
      if (headers.trim()) rec.headers = JSON.parse(headers)
    } catch (err) { setError({ message: 'not JSON: ' + err.message }); return }
    if (part !== '') rec.partition = Number(part)
    tcall('POST', 'topics/' + encodeURIComponent(topic) + '/records', { records: [rec] })
      .then(r => { setOut(r); setError(null); onDone() }, setError)
  }
  return html`
    <h2>Produce</h2>
    <form class="produce" onSubmit=${submit} data-testid="produce">
      <input placeholder="key (optional)" value=${key} onInput=${e => setKey(e.target.value)} data-testid="produce-key" />
      <select value=${part} onChange=${e => setPart(e.target.value)} data-testid="produce-partition">
        <option value="">partition by key</option>
        ${Array.from({ length: partitions }, (_, i) => html`<option value=${i}>partition ${i}</option>`)}
      </select>
      <select value=${enc} onChange=${e => setEnc(e.target.value)} data-testid="produce-encoding">
        <option value="json">JSON</option><option value="text">text</option><option value="base64">base64</option>
      </select>
      <textarea placeholder='value, e.g. {"temp": 21.5}' rows="3" value=${value} onInput=${e => setValue(e.target.value)} data-testid="produce-value"></textarea>
      <input placeholder='headers (optional), e.g. {"unit":"C"}' value=${headers} onInput=${e => setHeaders(e.target.value)} />
      <button data-testid="produce-submit">Send</button>
    </form>
    <${ErrorBox} error=${error} />
    ${out && html`<p data-testid="produced">Stored at ${out.offsets.map(o => 'partition ' + o.partition + ' offset ' + o.offset).join(', ')}
      ${out.transform ? ' (transform: ' + JSON.stringify(out.transform) + ')' : ''}</p>`}`
}

function Config ({ topic, editable, onSaved }) {
  const [edit, setEdit] = useState(null)
  const [error, setError] = useState(null)
  const keys = Object.keys(topic.config).sort()
  const save = e => {
    e.preventDefault()
    tcall('PATCH', 'topics/' + encodeURIComponent(topic.name), { config: edit })
      .then(() => { setEdit(null); setError(null); onSaved() }, setError)
  }
  return html`
    <h2>Config</h2>
    <form onSubmit=${save}>
      <table class="config" data-testid="config">
        <tbody>${keys.map(k => html`<tr><td>${k}</td><td>${edit && k in edit
          ? html`<input value=${edit[k]} onInput=${e => setEdit({ ...edit, [k]: e.target.value })} data-testid=${'config-' + k} />`
          : topic.config[k]}</td></tr>`)}</tbody>
      </table>
      ${editable && !edit ? html`<button type="button" onClick=${() => setEdit({ 'retention.ms': topic.config['retention.ms'], 'retention.bytes': topic.config['retention.bytes'], 'max.message.bytes': topic.config['max.message.bytes'] })} data-testid="config-edit">Edit retention and limits</button>` : ''}
      ${edit ? html`<button data-testid="config-save">Save</button> <button type="button" class="link" onClick=${() => setEdit(null)}>cancel</button>` : ''}
    </form>
    <${ErrorBox} error=${error} />`
}

// TransformNodes: how the topic's transform runs on every node (it runs
// where records come in; breakers are per node).
function TransformNodes ({ tenant, name }) {
  const [d, error] = useLoad(() => tget('topics/' + encodeURIComponent(name) + '?nodes=all'), [tenant, name], 10000)
  if (error) return html`<${ErrorBox} error=${error} />`
  const nodes = (d && d.transform && d.transform.nodes) || []
  return html`<table data-testid="transform-nodes"><thead><tr><th>node</th><th>breaker</th><th>records in / out / dropped</th><th>failures</th><th>last error</th></tr></thead>
    <tbody>${nodes.map(n => {
      const st = n.status || {}
      return html`<tr class=${st.breaker === 'open' || n.error ? 'warn' : ''}><td>${n.node}</td>
        <td>${n.error ? 'unreachable: ' + n.error : st.breaker || 'not run here'}</td>
        <td>${num(st.records_in || 0)} / ${num(st.records_out || 0)} / ${num(st.records_dropped || 0)}</td>
        <td>${st.consecutive_failures || 0}</td><td>${st.last_error || ''}</td></tr>`
    })}</tbody></table>`
}

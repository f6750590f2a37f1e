// MQTT: the devices connected to this node (client id, identity, address,
// version, counters) with a kick; the tenant's topic mapping with a tester
// (which Eddy topic and key a device's publish would land in); for
// operators, refusals by reason, QoS 0 drops and the bridges.
import { useState } from '../../vendor/hooks.mjs'
import { api, tget, tcall } from '../api.js'
import { html, useLoad, num, bytes, ago, time, ErrorBox } from '../ui.js'

export function MQTT ({ me, tenant }) {
  const admin = me.operator || me.admin
  const [all, setAll] = useState(false)
  const [d, error, reload] = useLoad(() => admin ? tget('mqtt/connections' + (all ? '?all=true' : '')) : Promise.resolve(null), [tenant, all], 5000)
  if (!admin) return html`<h1>MQTT</h1><p>The MQTT page needs the tenant's admin scope.</p>`
  const kick = c => tcall('DELETE', 'mqtt/connections/' + encodeURIComponent(c.client_id)).then(reload, alert)
  const conns = (d && d.connections) || []
  return html`
    <h1>MQTT <small>devices connected to this node</small></h1>
    ${me.operator ? html`<label class="inline"><input type="checkbox" checked=${all} onChange=${e => setAll(e.target.checked)} data-testid="mqtt-all" /> every tenant</label>` : ''}
    <${ErrorBox} error=${error} />
    <table data-testid="mqtt-connections">
      <thead><tr><th>client id</th><th>tenant</th><th>token subject</th><th>address</th><th>version</th><th>connected</th><th>last publish</th><th>messages</th><th>bytes</th><th>subscriptions</th><th>unacked</th><th>behind</th><th></th></tr></thead>
      <tbody>${conns.map(c => html`<tr data-testid=${'conn-' + c.client_id}><td>${c.client_id}</td><td>${c.tenant}</td><td title=${'scopes: ' + (c.scopes || []).join(' ')} data-testid="conn-subject">${c.subject}</td><td>${c.remote}</td>
        <td>${c.protocol_version === 5 ? '5' : c.protocol_version === 4 ? '3.1.1' : '3.1'}</td><td>${time(c.connected_ms)}</td><td>${ago(c.last_publish_ms)}</td>
        <td>${num(c.messages)}</td><td>${bytes(c.bytes)}</td>
        <td title=${c.persistent ? 'persistent session' : 'clean session'}>${(c.subscriptions || []).join(' ')}${c.persistent ? ' (persistent)' : ''}</td>
        <td>${num(c.unacknowledged)}</td><td>${c.partitions_behind ? num(c.partitions_behind) + ' partitions' : ''}</td>
        <td><button class="link" onClick=${() => kick(c)} data-testid=${'kick-' + c.client_id}>disconnect</button></td></tr>`)}</tbody>
    </table>
    ${d && conns.length === 0 ? html`<p>No device is connected to this node.</p>` : ''}
    <${Mapping} tenant=${tenant} />
    ${me.operator ? html`<${ListenerStats} />` : ''}`
}

function Mapping ({ tenant }) {
  const [t, error, reload] = useLoad(() => api('GET', 'v1/tenants/' + encodeURIComponent(tenant)), [tenant])
  const [edit, setEdit] = useState(null)
  const [topic, setTopic] = useState('sensors/dev-17')
  const [payload, setPayload] = useState('')
  const [out, setOut] = useState(null)
  const [err, setErr] = useState(null)
  const base = 'v1/tenants/' + encodeURIComponent(tenant) + '/mqtt'
  const test = e => { e.preventDefault(); api('POST', base + '/test', { topic, payload }).then(r => { setOut(r); setErr(null) }, setErr) }
  const save = () => {
    let m
    try { m = JSON.parse(edit) } catch (e) { setErr({ message: 'not JSON: ' + e.message }); return }
    api('PUT', base, m).then(() => { setEdit(null); setErr(null); reload() }, setErr)
  }
  const mapping = t && t.mqtt
  return html`
    <h2>Topic mapping</h2>
    <${ErrorBox} error=${error || err} />
    ${t && !edit && html`<p>${mapping && mapping.rules && mapping.rules.length ? '' : 'The default: the first level of an MQTT topic names the Eddy topic, the rest is the key.'}</p>
      ${mapping && mapping.rules && mapping.rules.length ? html`<table><thead><tr><th>MQTT filter</th><th>Eddy topic</th><th>key from</th></tr></thead>
        <tbody>${mapping.rules.map(r => html`<tr><td>${r.filter}</td><td>${r.topic || '(first level)'}</td><td>${r.key || 'rest'}</td></tr>`)}</tbody></table>` : ''}
      <button class="link" onClick=${() => setEdit(JSON.stringify(mapping || { rules: [] }, null, 2))}>edit</button>`}
    ${edit !== null && html`<textarea rows="8" value=${edit} onInput=${e => setEdit(e.target.value)}></textarea>
      <button onClick=${save}>Save</button> <button class="link" onClick=${() => setEdit(null)}>cancel</button>`}
    <h3>Try it</h3>
    <form class="inline" onSubmit=${test} data-testid="mqtt-test">
      <input placeholder="MQTT topic" value=${topic} onInput=${e => setTopic(e.target.value)} data-testid="mqtt-test-topic" />
      <input placeholder="payload (for json: keys)" value=${payload} onInput=${e => setPayload(e.target.value)} />
      <button data-testid="mqtt-test-run">Map</button>
    </form>
    ${out && html`<p data-testid="mqtt-test-out">${out.refused ? 'refused: ' + out.refused.message
      : html`lands in topic <b>${out.topic}</b>${out.topic_missing ? ' (which does not exist: the publish would be refused)' : ''}, key <b>${out.key === null ? 'none' : out.key}</b>`}</p>`}`
}

// ListenerStats reads the MQTT counters from /metrics (operators only).
function ListenerStats () {
  const [d] = useLoad(async () => {
    const [text, br] = await Promise.all([api('GET', 'metrics'), api('GET', 'v1/bridges')])
    const rows = String(text).split('\n').filter(l => /^eddy_mqtt_(connect_refused|qos0_dropped|preauth_dropped|revoked|kicked|connects)/.test(l)).map(l => l.split(' '))
    return { rows, bridges: br.bridges || [] }
  }, [], 10000)
  if (!d) return null
  return html`
    <h2>Listener</h2>
    <table><tbody>${d.rows.map(([k, v]) => html`<tr><td><code>${k}</code></td><td>${num(Number(v))}</td></tr>`)}</tbody></table>
    <h2>Bridges</h2>
    ${d.bridges.length === 0 ? html`<p>No bridge configured.</p>` : html`<table><thead><tr><th>bridge</th><th>connected</th><th>last error</th></tr></thead>
      <tbody>${d.bridges.map(b => html`<tr class=${b.connected ? '' : 'warn'}><td>${b.name}</td><td>${b.connected ? 'yes' : 'no'}</td><td>${b.last_error || ''}</td></tr>`)}</tbody></table>`}`
}

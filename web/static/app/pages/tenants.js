// Tenants: quotas against usage (operators edit them); keys (add, revoke);
// minting a token for a device with ready mosquitto_pub, curl and kcat
// lines. Operators see every tenant and create them, a tenant's admin
// sees its own.
import { useState } from '../../vendor/hooks.mjs'
import { api } from '../api.js'
import { html, useLoad, num, bytes, time, ErrorBox } from '../ui.js'

const QUOTAS = [['max_topics', 'topics', 'topics', num], ['max_partitions', 'partitions', 'partitions', num],
  ['storage_bytes', 'storage_bytes', 'storage', bytes], ['max_groups', null, 'groups', num],
  ['max_mqtt_sessions', null, 'MQTT sessions', num],
  ['produce_records_per_sec', null, 'records/s', num], ['produce_bytes_per_sec', null, 'bytes/s', bytes],
  ['consume_bytes_per_sec', null, 'read bytes/s', bytes]]

export function Tenants ({ me, tenant }) {
  const [list, error, reload] = useLoad(() => me.operator ? api('GET', 'v1/tenants') : Promise.resolve({ tenants: [{ name: me.tenant }] }), [])
  if (!me.operator && !me.admin) return html`<h1>Tenant ${me.tenant}</h1><p>Describing the tenant needs its admin scope.</p>`
  return html`
    <h1>${me.operator ? 'Tenants' : 'Tenant ' + me.tenant}</h1>
    <${ErrorBox} error=${error} />
    ${me.operator && list ? html`<table data-testid="tenants"><thead><tr><th>tenant</th><th>created</th></tr></thead>
      <tbody>${list.tenants.map(t => html`<tr><td>${t.name}${t.name === tenant ? ' (shown)' : ''}</td><td>${time(t.created_ms)}</td></tr>`)}</tbody></table>
      <${CreateTenant} onDone=${reload} />` : ''}
    <${TenantDetail} name=${tenant} operator=${me.operator} />`
}

function CreateTenant ({ onDone }) {
  const [name, setName] = useState('')
  const [error, setError] = useState(null)
  const submit = e => { e.preventDefault(); api('POST', 'v1/tenants', { name }).then(() => { setName(''); setError(null); onDone() }, setError) }
  return html`<form class="inline" onSubmit=${submit} data-testid="create-tenant">
      <input placeholder="new tenant" value=${name} onInput=${e => setName(e.target.value)} required />
      <button>Create tenant</button> <span class="hint">(with the default quotas; pick it in the header to look at it)</span>
    </form><${ErrorBox} error=${error} />`
}

function TenantDetail ({ name, operator }) {
  const path = 'v1/tenants/' + encodeURIComponent(name)
  const [quotaEdit, setQuotaEdit] = useState(null)
  const [err, setErr] = useState(null)
  const [d, error, reload] = useLoad(() => Promise.all([api('GET', path), api('GET', path + '/keys')]), [name], 10000)
  if (error) return html`<${ErrorBox} error=${error} />`
  if (!d) return html`<p>Loading…</p>`
  const [t, keys] = d
  const saveQuotas = () => {
    let q
    try { q = JSON.parse(quotaEdit) } catch (e) { setErr({ message: 'not JSON: ' + e.message }); return }
    api('PATCH', path, { quotas: q }).then(() => { setQuotaEdit(null); setErr(null); reload() }, setErr)
  }
  const revoke = k => {
    if (confirm('Revoke key ' + k.kid + '? Every token it signed stops working at once.')) api('DELETE', path + '/keys/' + encodeURIComponent(k.kid)).then(reload, setErr)
  }
  return html`
    <h2>${name}: quotas and usage</h2>
    <${ErrorBox} error=${err} />
    <table data-testid="quotas"><thead><tr><th>quota</th><th>used</th><th>limit</th></tr></thead>
      <tbody>${QUOTAS.map(([q, u, label, f]) => {
        const limit = t.quotas[q]
        const used = u ? t.usage[u] : null
        const pct = limit && used !== null ? Math.min(100, Math.round(100 * used / limit)) : null
        return html`<tr><td>${label}</td><td>${used === null ? '' : f(used)}${pct !== null ? html` <meter min="0" max="100" value=${pct}></meter> ${pct}%` : ''}</td><td>${limit ? f(limit) : 'unlimited'}</td></tr>`
      })}</tbody></table>
    ${operator && quotaEdit === null ? html`<button class="link" onClick=${() => setQuotaEdit(JSON.stringify(t.quotas, null, 2))}>edit quotas</button>` : ''}
    ${quotaEdit !== null ? html`<textarea rows="6" value=${quotaEdit} onInput=${e => setQuotaEdit(e.target.value)}></textarea>
      <button onClick=${saveQuotas}>Save quotas</button> <button class="link" onClick=${() => setQuotaEdit(null)}>cancel</button>` : ''}
    <h2>Keys</h2>
    <p class="hint">A tenant's own public keys: it signs its devices' tokens offline (<code>eddy token sign</code>).</p>
    <table><thead><tr><th>kid</th><th>alg</th><th>added</th><th></th></tr></thead>
      <tbody>${(keys.keys || []).map(k => html`<tr><td>${k.kid}</td><td>${k.alg}</td><td>${time(k.created_ms)}</td>
        <td><button class="link" onClick=${() => revoke(k)}>revoke</button></td></tr>`)}</tbody></table>
    <${AddKey} path=${path} onDone=${reload} />
    <${Mint} tenant=${name} />`
}

function AddKey ({ path, onDone }) {
  const [kid, setKid] = useState('')
  const [alg, setAlg] = useState('EdDSA')
  const [pem, setPem] = useState('')
  const [error, setError] = useState(null)
  const submit = e => {
    e.preventDefault()
    api('POST', path + '/keys', { kid, alg, public_key_pem: pem }).then(() => { setKid(''); setPem(''); setError(null); onDone() }, setError)
  }
  return html`<form onSubmit=${submit} data-testid="add-key">
      <p class="inline"><input placeholder="kid" value=${kid} onInput=${e => setKid(e.target.value)} required />
        <select value=${alg} onChange=${e => setAlg(e.target.value)}><option>EdDSA</option><option>ES256</option><option>RS256</option></select>
        <button>Add key</button></p>
      <textarea rows="3" placeholder="-----BEGIN PUBLIC KEY-----" value=${pem} onInput=${e => setPem(e.target.value)} required></textarea>
    </form><${ErrorBox} error=${error} />`
}

function Mint ({ tenant }) {
  const [subject, setSubject] = useState('device-1')
  const [scopes, setScopes] = useState('produce:sensors')
  const [ttl, setTTL] = useState(86400)
  const [out, setOut] = useState(null)
  const [error, setError] = useState(null)
  const submit = e => {
    e.preventDefault()
    api('POST', 'v1/tenants/' + encodeURIComponent(tenant) + '/tokens', { subject, scopes: scopes.split(/[\s,]+/).filter(Boolean), ttl_seconds: Number(ttl) })
      .then(r => { setOut(r); setError(null) }, setError)
  }
  const host = location.hostname
  const topic = ((out && out.scopes.find(s => s.startsWith('produce:'))) || 'produce:sensors').slice(8).replace(/\*.*/, '') || 'sensors'
  const who = (out && out.subject) || subject
  // A device token of MQTT scopes: its own MQTT topic, and no HTTP or Kafka line (they grant neither).
  const mqttPub = out && out.scopes.find(s => s.startsWith('mqtt-pub:'))
  const mqttTopic = mqttPub
    ? mqttPub.slice(9).split('/').map(l => l === '{sub}' ? who : l === '#' ? 'temp' : l === '+' ? 'x' : l).join('/')
    : topic + '/' + who
  const wholeTopics = !out || !out.scopes.some(s => s.startsWith('mqtt-')) || out.scopes.some(s => s.startsWith('produce:') || s === 'admin' || s === 'operator')
  return html`
    <h2>Mint a token</h2>
    <form class="inline" onSubmit=${submit} data-testid="mint">
      <input placeholder="subject (device id)" value=${subject} onInput=${e => setSubject(e.target.value)} />
      <input placeholder="scopes" value=${scopes} onInput=${e => setScopes(e.target.value)} data-testid="mint-scopes" />
      <label>TTL s <input type="number" min="60" value=${ttl} onInput=${e => setTTL(e.target.value)} /></label>
      <button data-testid="mint-submit">Mint</button>
    </form>
    <${ErrorBox} error=${error} />
    ${out && html`<div data-testid="minted">
      <p>Token for <b>${out.subject || subject}</b>, scopes ${out.scopes.join(' ')}, expires ${out.expires_at}:</p>
      <pre class="token" data-testid="minted-token">${out.token}</pre>
      <p>Try it:</p>
      <pre>${'mosquitto_pub -h ' + host + ' -p 1883 -u ' + tenant + ' -P "$TOKEN" -t ' + mqttTopic + " -q 1 -m '{\"temp\":21.5}'\n" + (!wholeTopics ? '' :
        'curl -H "Authorization: Bearer $TOKEN" -d \'{"records":[{"value":{"temp":21.5}}]}\' ' + new URL('../v1/topics/' + topic + '/records', document.baseURI) + '\n' +
        "echo '{\"temp\":21.5}' | kcat -b " + host + ':9092 -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN -X sasl.username=' + tenant + ' -X sasl.password="$TOKEN" -P -t ' + topic)}</pre>
    </div>`}`
}

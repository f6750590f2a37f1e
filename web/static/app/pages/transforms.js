// Transforms: each module's kept versions and the topics it runs on with
// their breaker state; uploading a .wasm; a dry run on typed records with
// the outputs and the guest's stderr; binding a topic (policy, dead-letter
// topic, a pinned version: pinning an older one is the rollback).
import { useState } from '../../vendor/hooks.mjs'
import { tget, tcall } from '../api.js'
import { html, useLoad, bytes, time, ErrorBox, link } from '../ui.js'

export function Transforms ({ me, tenant }) {
  const admin = me.operator || me.admin
  const [d, error, reload] = useLoad(() => admin ? tget('transforms') : Promise.resolve({ transforms: [] }), [tenant], 5000)
  if (!admin) return html`<h1>Transforms</h1><p>Transforms need the tenant's admin scope.</p>`
  const list = (d && d.transforms) || []
  return html`
    <h1>Transforms</h1>
    <${ErrorBox} error=${error} />
    <${Upload} onDone=${reload} />
    ${list.map(t => html`<${Module} t=${t} onChange=${reload} />`)}
    ${d && list.length === 0 ? html`<p>No transforms yet. Build one (examples/transforms) and upload its .wasm.</p>` : ''}
    ${list.length > 0 ? html`<${DryRun} list=${list} /><${Bind} list=${list} onDone=${reload} />` : ''}`
}

function Upload ({ onDone }) {
  const [name, setName] = useState('')
  const [file, setFile] = useState(null)
  const [out, setOut] = useState(null)
  const [error, setError] = useState(null)
  const submit = e => {
    e.preventDefault()
    file.arrayBuffer().then(buf => tcall('PUT', 'transforms/' + encodeURIComponent(name), buf, { type: 'application/wasm' }))
      .then(r => { setOut(r); setError(null); onDone() }, setError)
  }
  return html`
    <form class="inline" onSubmit=${submit} data-testid="upload">
      <input placeholder="transform name" value=${name} onInput=${e => setName(e.target.value)} required data-testid="upload-name" />
      <input type="file" accept=".wasm,application/wasm" onChange=${e => setFile(e.target.files[0])} required data-testid="upload-file" />
      <button data-testid="upload-submit">Upload version</button>
    </form>
    <${ErrorBox} error=${error} />
    ${out && html`<p data-testid="uploaded">${out.name} version ${out.version} (${bytes(out.size)}, compiled in ${out.compile_ms} ms)</p>`}`
}

function Module ({ t, onChange }) {
  const [error, setError] = useState(null)
  const pin = (b, version) => tcall('PUT', 'topics/' + encodeURIComponent(b.topic) + '/transform',
    { module: t.name, version, config: b.config, on_error: b.on_error, dead_letter_topic: b.dead_letter_topic || '' }).then(onChange, setError)
  return html`
    <section class="module" data-testid=${'module-' + t.name}>
      <h2>${t.name} <small>latest version ${t.latest_version}</small></h2>
      <table><thead><tr><th>version</th><th>sha256</th><th>size</th><th>uploaded</th></tr></thead>
        <tbody>${t.versions.map(v => html`<tr><td>${v.version}</td><td><code>${v.sha256.slice(0, 16)}…</code></td><td>${bytes(v.size)}</td><td>${time(v.created_ms)}</td></tr>`)}</tbody></table>
      <table><thead><tr><th>topic</th><th>runs</th><th>on error</th><th>breaker</th><th>in / out / dropped</th><th>last error</th><th></th></tr></thead>
        <tbody>${t.topics.map(b => {
          const st = b.status || {}
          return html`<tr data-testid=${'binding-' + b.topic}><td><a href=${link('topics/' + b.topic)}>${b.topic}</a></td>
            <td data-testid="runs-version">v${b.runs_version}${b.version ? ' (pinned)' : ''}</td><td>${b.on_error}${b.dead_letter_topic ? ' → ' + b.dead_letter_topic : ''}</td>
            <td class=${st.breaker === 'open' ? 'warn' : ''}>${st.breaker || '–'}</td><td>${st.records_in || 0} / ${st.records_out || 0} / ${st.records_dropped || 0}</td>
            <td>${st.last_error || ''}</td>
            <td>${t.versions.filter(v => v.version !== b.runs_version).map(v => html`<button class="link" onClick=${() => pin(b, v.version)} data-testid=${'pin-' + v.version}>pin v${v.version}</button> `)}
              ${b.version ? html`<button class="link" onClick=${() => pin(b, 0)}>follow latest</button>` : ''}</td></tr>`
        })}</tbody></table>
      <${ErrorBox} error=${error} />
    </section>`
}

function DryRun ({ list }) {
  const [name, setName] = useState(list[0].name)
  const [version, setVersion] = useState(0)
  const [config, setConfig] = useState('')
  const [input, setInput] = useState(() => { // records sent from the browser
    const v = sessionStorage.getItem('eddy.dryrun') || ''
    sessionStorage.removeItem('eddy.dryrun')
    return v
  })
  const [out, setOut] = useState(null)
  const [error, setError] = useState(null)
  const run = e => {
    e.preventDefault()
    let cfg
    try { cfg = config.trim() ? JSON.parse(config) : undefined } catch (err) { setError({ message: 'config is not JSON: ' + err.message }); return }
    const records = input.split('\n').filter(l => l.trim()).map(l => { try { return { value: JSON.parse(l) } } catch (err) { return { value: l } } })
    tcall('POST', 'transforms/' + encodeURIComponent(name) + '/test', { version: Number(version), config: cfg, records })
      .then(r => { setOut(r); setError(null) }, setError)
  }
  const t = list.find(x => x.name === name) || list[0]
  return html`
    <h2>Dry run</h2>
    <form onSubmit=${run} data-testid="dryrun">
      <p class="inline">
        <select value=${name} onChange=${e => setName(e.target.value)} data-testid="dryrun-module">${list.map(x => html`<option>${x.name}</option>`)}</select>
        <select value=${version} onChange=${e => setVersion(e.target.value)}><option value="0">latest</option>${t.versions.map(v => html`<option value=${v.version}>v${v.version}</option>`)}</select>
        <input placeholder='config (JSON, optional)' value=${config} onInput=${e => setConfig(e.target.value)} data-testid="dryrun-config" />
      </p>
      <textarea rows="4" placeholder="one record value per line (JSON or text)" value=${input} onInput=${e => setInput(e.target.value)} data-testid="dryrun-input"></textarea>
      <button data-testid="dryrun-submit">Run</button>
    </form>
    <${ErrorBox} error=${error} />
    ${out && html`<div data-testid="dryrun-out">
      <p>${out.records.length} records out in ${out.duration_ms} ms${out.error ? html` <span class="error">${out.error.code}: ${out.error.message}</span>` : ''}</p>
      <table class="records"><tbody>${out.records.map(r => html`<tr data-testid="dryrun-record"><td>from ${r.source}</td><td><code>${r.key === null || r.key === undefined ? '' : JSON.stringify(r.key)}</code></td><td><pre>${JSON.stringify(r.value)}</pre></td></tr>`)}</tbody></table>
      ${out.stderr ? html`<h3>stderr</h3><pre data-testid="dryrun-stderr">${out.stderr}</pre>` : ''}</div>`}`
}

function Bind ({ list, onDone }) {
  const [topic, setTopic] = useState('')
  const [module, setModule] = useState(list[0].name)
  const [version, setVersion] = useState(0)
  const [onError, setOnError] = useState('reject')
  const [dlq, setDLQ] = useState('')
  const [error, setError] = useState(null)
  const [topics] = useLoad(() => tget('topics'), [])
  const submit = e => {
    e.preventDefault()
    tcall('PUT', 'topics/' + encodeURIComponent(topic) + '/transform', { module, version: Number(version), on_error: onError, dead_letter_topic: dlq })
      .then(() => { setError(null); onDone() }, setError)
  }
  const t = list.find(x => x.name === module) || list[0]
  return html`
    <h2>Bind to a topic</h2>
    <form class="inline" onSubmit=${submit} data-testid="bind">
      <select value=${topic} onChange=${e => setTopic(e.target.value)} required data-testid="bind-topic">
        <option value="">topic…</option>${((topics && topics.topics) || []).map(x => html`<option>${x.name}</option>`)}</select>
      <select value=${module} onChange=${e => setModule(e.target.value)}>${list.map(x => html`<option>${x.name}</option>`)}</select>
      <select value=${version} onChange=${e => setVersion(e.target.value)}><option value="0">latest</option>${t.versions.map(v => html`<option value=${v.version}>v${v.version}</option>`)}</select>
      <select value=${onError} onChange=${e => setOnError(e.target.value)}>${['reject', 'dead-letter', 'pass'].map(x => html`<option>${x}</option>`)}</select>
      ${onError === 'dead-letter' ? html`<input placeholder="dead-letter topic" value=${dlq} onInput=${e => setDLQ(e.target.value)} />` : ''}
      <button data-testid="bind-submit">Bind</button>
    </form>
    <${ErrorBox} error=${error} />`
}

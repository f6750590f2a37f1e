// The record browser: the newest N (default), from an offset or from a
// time, on one partition or all of them merged by timestamp; values
// decoded as JSON, text, base64 or hex; headers; an NDJSON download that
// POST .../records (and eddy produce) take back. Every read is bounded:
// at most N records a partition, however large the topic. A search (by
// key, through the key's partition, and/or a substring of the value) runs
// on the server in bounded steps, with progress, and can be stopped.
import { useState, useEffect, useRef } from '../../vendor/hooks.mjs'
import { tget } from '../api.js'
import { html, num, bytes, time, ErrorBox, link } from '../ui.js'
import { show } from '../decode.js'

const enc = encodeURIComponent

async function readPartition (topic, p, scope, at, n, binary) {
  const base = 'topics/' + enc(topic) + '/partitions/' + p
  const offs = await tget(base + '/offsets' + (scope === 'time' ? '?timestamp=' + at : ''))
  let from
  if (scope === 'newest') from = Math.max(offs.earliest, offs.latest - n)
  else if (scope === 'oldest') from = offs.earliest
  else if (scope === 'offset') from = Math.min(Math.max(Number(at), offs.earliest), offs.latest)
  else from = offs.offset
  if (from >= offs.latest) return { records: [], next: from, end: offs.latest }
  const d = await tget(base + '/records?offset=' + from + '&max=' + n + '&max_bytes=1048576' + (binary ? '&format=binary' : ''))
  return { records: d.records.map(r => ({ ...r, partition: p })), next: d.next_offset, end: d.high_watermark }
}

export function Records ({ tenant, topic, partition }) {
  const [meta, setMeta] = useState(null)
  const [scope, setScope] = useState('newest')
  const [at, setAt] = useState('')
  const [n, setN] = useState(50)
  const [part, setPart] = useState(partition === undefined ? 'all' : String(partition))
  const [mode, setMode] = useState('auto')
  const [res, setRes] = useState(null)
  const [error, setError] = useState(null)
  const [busy, setBusy] = useState(false)
  useEffect(() => { tget('topics/' + enc(topic)).then(setMeta, setError) }, [tenant, topic])
  const parts = () => part === 'all' ? Array.from({ length: meta.partitions }, (_, i) => i) : [Number(part)]
  const read = async (binary) => {
    let when = at
    if (scope === 'time') when = at ? new Date(at).getTime() : Date.now() - 3600000
    const got = await Promise.all(parts().map(p => readPartition(topic, p, scope, when, Number(n), binary)))
    let recs = got.flatMap(g => g.records)
    recs.sort((a, b) => a.timestamp - b.timestamp || a.partition - b.partition || a.offset - b.offset)
    if (scope === 'newest') recs = recs.slice(-Number(n)).reverse() // newest first
    else recs = recs.slice(0, Number(n))
    return { recs, ends: got.map(g => g.end) }
  }
  const load = () => {
    setBusy(true)
    read(false).then(r => { setRes(r); setError(null) }, setError).finally(() => setBusy(false))
  }
  useEffect(() => { if (meta) load() }, [meta])
  const download = () => read(true).then(r => {
    const lines = r.recs.map(x => JSON.stringify({ key: x.key, key_encoding: x.key_encoding, value: x.value, value_encoding: x.value_encoding, headers: x.headers, timestamp: x.timestamp }))
    const a = document.createElement('a')
    a.href = URL.createObjectURL(new Blob([lines.join('\n') + '\n'], { type: 'application/x-ndjson' }))
    a.download = topic + '.ndjson'
    a.click()
    setTimeout(() => URL.revokeObjectURL(a.href), 1000)
  }, setError)
  if (!meta) return html`<${ErrorBox} error=${error} />`
  return html`
    <h1>Records of <a href=${link('topics/' + topic)}>${topic}</a></h1>
    <${Search} topic=${topic} meta=${meta} mode=${mode} />
    <form class="inline" onSubmit=${e => { e.preventDefault(); load() }} data-testid="browse-form">
      <select value=${scope} onChange=${e => setScope(e.target.value)} data-testid="scope">
        <option value="newest">newest</option><option value="oldest">oldest</option>
        <option value="offset">from offset</option><option value="time">from time</option>
      </select>
      ${scope === 'offset' ? html`<input type="number" min="0" placeholder="offset" value=${at} onInput=${e => setAt(e.target.value)} data-testid="at-offset" />` : ''}
      ${scope === 'time' ? html`<input type="datetime-local" step="1" value=${at} onInput=${e => setAt(e.target.value)} data-testid="at-time" />` : ''}
      <label>N <input type="number" min="1" max="1000" value=${n} onInput=${e => setN(e.target.value)} /></label>
      <select value=${part} onChange=${e => setPart(e.target.value)} data-testid="browse-partition">
        <option value="all">all partitions</option>
        ${Array.from({ length: meta.partitions }, (_, i) => html`<option value=${i}>partition ${i}</option>`)}
      </select>
      <select value=${mode} onChange=${e => setMode(e.target.value)} data-testid="decode">
        <option value="auto">auto</option><option value="json">JSON</option><option value="text">text</option>
        <option value="base64">base64</option><option value="hex">hex</option>
      </select>
      <button disabled=${busy} data-testid="browse-load">${busy ? 'Reading…' : 'Read'}</button>
      <button type="button" onClick=${download} data-testid="download">Download NDJSON</button>
      ${res && res.recs.length ? html`<button type="button" onClick=${() => toDryRun(res.recs)} data-testid="to-dryrun">Dry-run a transform on these</button>` : ''}
    </form>
    <${ErrorBox} error=${error} />
    ${res && html`
      <p class="hint">${num(res.recs.length)} records shown; partitions end at ${res.ends.map(num).join(', ')}</p>
      <table class="records" data-testid="records">
        <thead><tr><th>partition</th><th>offset</th><th>time</th><th>key</th><th>value</th><th>headers</th></tr></thead>
        <tbody>${res.recs.map(r => html`<tr data-testid="record">
          <td>${r.partition}</td><td>${r.offset}</td><td>${time(r.timestamp)}</td>
          <td><code>${show(r.key, r.key_encoding, mode === 'auto' ? 'auto' : 'text', 200)}</code></td>
          <td><pre data-testid="record-value">${show(r.value, r.value_encoding, mode)}</pre></td>
          <td>${(r.headers || []).map(h => html`<div><b>${show(h.key, h.key_encoding, 'text', 200)}</b>=${show(h.value, h.value_encoding, 'auto', 200)}</div>`)}</td></tr>`)}</tbody>
      </table>`}`
}

// Search scans on the server, scan_max_bytes at a time, until done,
// stopped, or N matches; each step shows how far it got.
function Search ({ topic, meta, mode }) {
  const [key, setKey] = useState('')
  const [contains, setContains] = useState('')
  const [state, setState] = useState(null)
  const stop = useRef(false)
  const run = async e => {
    e.preventDefault()
    stop.current = false
    const base = 'topics/' + enc(topic)
    let parts = Array.from({ length: meta.partitions }, (_, i) => i)
    if (key) parts = [(await tget(base + '/partition-for-key?key=' + enc(key))).partition]
    const found = []
    let scanned = 0
    for (const p of parts) {
      let off = (await tget(base + '/partitions/' + p + '/offsets')).earliest
      for (;;) {
        const q = new URLSearchParams({ offset: off, max: 100, scan_max_bytes: 8 << 20, preview_bytes: 4096 })
        if (key) q.set('key', key)
        if (contains) q.set('contains', contains)
        const d = await tget(base + '/partitions/' + p + '/records?' + q)
        found.push(...d.records.map(r => ({ ...r, partition: p })))
        scanned += d.scanned_bytes
        off = d.next_offset
        setState({ found: found.slice(0, 500), scanned, at: 'partition ' + p + ' offset ' + off + ' of ' + d.high_watermark, busy: true })
        if (d.done || stop.current || found.length >= 500) break
      }
      if (stop.current || found.length >= 500) break
    }
    setState(s => ({ ...s, busy: false, stopped: stop.current }))
  }
  return html`
    <form class="inline" onSubmit=${e => run(e).catch(err => setState({ error: err }))} data-testid="search">
      <input placeholder="key (exact)" value=${key} onInput=${e => setKey(e.target.value)} data-testid="search-key" />
      <input placeholder="value contains" value=${contains} onInput=${e => setContains(e.target.value)} data-testid="search-contains" />
      <button disabled=${state && state.busy} data-testid="search-run">Search</button>
      ${state && state.busy ? html`<button type="button" class="danger" onClick=${() => { stop.current = true }}>Stop</button>` : ''}
    </form>
    ${state && state.error ? html`<${ErrorBox} error=${state.error} />` : ''}
    ${state && !state.error && html`<p class="hint" data-testid="search-progress">${state.found.length} found; scanned ${bytes(state.scanned)}, at ${state.at}${state.busy ? '…' : state.stopped ? ' (stopped)' : ' (done)'}</p>
      ${state.found.length > 0 && html`<table class="records" data-testid="search-results"><tbody>${state.found.map(r => html`<tr>
        <td>${r.partition}</td><td>${r.offset}</td><td>${time(r.timestamp)}</td><td><code>${show(r.key, r.key_encoding, 'auto', 200)}</code></td>
        <td><pre>${show(r.value, r.value_encoding, mode)}${r.value_size ? ' … (' + r.value_size + ' bytes)' : ''}</pre></td></tr>`)}</tbody></table>`}`}`
}

// toDryRun hands the shown records' values to the Transforms page's dry
// run (one per line, as it takes them), at most 100.
function toDryRun (recs) {
  const lines = recs.slice(0, 100).map(r => r.value_encoding === 'base64' ? atob(r.value) : typeof r.value === 'string' ? r.value : JSON.stringify(r.value))
  sessionStorage.setItem('eddy.dryrun', lines.join('\n'))
  location.hash = '#/transforms'
}

// Live tail over the SSE endpoint: newest on top, at most 500 rows, one
// render per animation frame however fast records come, pause, a filter
// on what is shown, and a reconnect (with backoff) that resumes each
// partition after the last record seen. Stops while the tab is hidden.
import { useState, useEffect, useRef } from '../../vendor/hooks.mjs'
import { sse, tenantPath } from '../api.js'
import { html, time, ErrorBox, link } from '../ui.js'
import { show } from '../decode.js'

const MAX_ROWS = 500

export function Tail ({ tenant, topic }) {
  const [rows, setRows] = useState([])
  const [paused, setPaused] = useState(false)
  const [filter, setFilter] = useState('')
  const [state, setState] = useState('connecting')
  const [error, setError] = useState(null)
  const [rate, setRate] = useState(0)
  const buf = useRef([])
  const pausedRef = useRef(false)
  pausedRef.current = paused
  useEffect(() => {
    const ctl = new AbortController()
    const last = {} // partition -> last offset seen
    let count = 0
    let frame = 0
    const flush = () => {
      frame = 0
      if (pausedRef.current || buf.current.length === 0) return
      const add = buf.current.reverse()
      buf.current = []
      setRows(r => add.concat(r).slice(0, MAX_ROWS))
    }
    const onEvent = (name, data) => {
      if (name === 'error') { setError(JSON.parse(data)); return }
      if (name !== 'record') return
      const r = JSON.parse(data)
      last[r.partition] = r.offset
      count++
      buf.current.push(r)
      if (buf.current.length > MAX_ROWS) buf.current.splice(0, buf.current.length - MAX_ROWS)
      if (!frame) frame = requestAnimationFrame(flush)
    }
    const tick = setInterval(() => { setRate(count); count = 0 }, 1000)
    const run = async () => {
      let wait = 500
      while (!ctl.signal.aborted) {
        if (document.hidden) { setState('paused while hidden'); await sleep(1000); continue }
        try {
          setState('live')
          const from = Object.entries(last).map(([p, o]) => p + ':' + (o + 1)).join(',')
          await sse(tenantPath('topics/' + encodeURIComponent(topic) + '/tail' + (from ? '?from=' + from : '')), onEvent, ctl.signal)
          wait = 500
        } catch (e) {
          if (ctl.signal.aborted) return
          setError(e)
        }
        setState('reconnecting')
        await sleep(wait)
        wait = Math.min(wait * 2, 30000)
      }
    }
    run()
    return () => { ctl.abort(); clearInterval(tick); if (frame) cancelAnimationFrame(frame) }
  }, [tenant, topic])
  const shown = filter ? rows.filter(r => JSON.stringify(r).includes(filter)) : rows
  return html`
    <h1>Live tail of <a href=${link('topics/' + topic)}>${topic}</a> <small data-testid="tail-state">${state}, ${rate} records/s</small></h1>
    <p class="inline">
      <button onClick=${() => setPaused(!paused)} data-testid="tail-pause">${paused ? 'Resume' : 'Pause'}</button>
      <input placeholder="filter shown rows" value=${filter} onInput=${e => setFilter(e.target.value)} data-testid="tail-filter" />
      <button class="link" onClick=${() => setRows([])}>clear</button>
    </p>
    <${ErrorBox} error=${error} />
    <table class="records" data-testid="tail-rows">
      <thead><tr><th>partition</th><th>offset</th><th>time</th><th>key</th><th>value</th></tr></thead>
      <tbody>${shown.map(r => html`<tr data-testid="tail-row"><td>${r.partition}</td><td>${r.offset}</td><td>${time(r.timestamp)}</td>
        <td><code>${show(r.key, r.key_encoding, 'auto', 200)}</code></td><td><pre>${show(r.value, r.value_encoding, 'auto', 500)}</pre></td></tr>`)}</tbody>
    </table>`
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

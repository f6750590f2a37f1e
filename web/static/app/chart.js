// Charts of the node's sampled history (GET /v1/series), drawn by uPlot
// (vendor/uPlot.iife.min.js, a global). An hour at 10 s steps; a gap
// where no sample was taken.
import { useEffect, useRef } from '../vendor/hooks.mjs'
import { tget } from './api.js'
import { html, useLoad } from './ui.js'

const COLORS = ['#1f6feb', '#d97706', '#16a34a', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626']

// loadSeries reads series (query: name=, topic=, group=) into uPlot's
// columns: the shared times, then one column per series.
export async function loadSeries (query) {
  const d = await tget('series?' + query)
  const step = d.step_ms
  let start = Infinity
  let end = 0
  for (const s of d.series) {
    start = Math.min(start, s.start_ms)
    end = Math.max(end, s.start_ms + (s.values.length - 1) * s.step_ms)
  }
  if (!d.series.length) return { times: [], columns: [], labels: [] }
  const times = []
  for (let t = start; t <= end; t += step) times.push(t / 1000)
  const columns = d.series.map(s => times.map(t => {
    const i = Math.round((t * 1000 - s.start_ms) / s.step_ms)
    return i >= 0 && i < s.values.length ? s.values[i] : null
  }))
  return { times, columns, labels: d.series.map(s => s.subject + ' ' + s.name.replace(/_/g, ' ')) }
}

// Chart draws the series a query names; title and unit label it. Until
// its data arrives it holds the plot's height, so what is below it does
// not move under the user's pointer when the plot appears.
export function Chart ({ query, title, unit, tenant, testid }) {
  const [d] = useLoad(() => loadSeries(query), [query, tenant], 10000)
  const el = useRef(null)
  useEffect(() => {
    if (!d || !d.times.length || !el.current || !window.uPlot) return
    const opts = {
      width: Math.min(900, el.current.clientWidth || 900),
      height: 180,
      series: [{}, ...d.labels.map((l, i) => ({ label: l, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false }))],
      axes: [{}, { label: unit, size: 60 }],
      legend: { live: false }
    }
    const plot = new window.uPlot(opts, [d.times, ...d.columns], el.current)
    return () => plot.destroy()
  }, [d])
  return html`<section class="chart" data-testid=${testid}>
    <h3>${title}</h3>
    ${d && !d.times.length ? html`<p class="hint">Nothing to show in the last hour.</p>` : ''}
    <div ref=${el} class=${d ? '' : 'plot-loading'}></div></section>`
}

// Shared pieces of the pages: the html template tag, a loader hook,
// number and time formats, and the error box.
import { h } from '../vendor/preact.mjs'
import { useState, useEffect, useCallback } from '../vendor/hooks.mjs'
import htm from '../vendor/htm.mjs'

export const html = htm.bind(h)

// useLoad runs load() now, whenever deps change, and every refreshMs (0:
// once); it answers [data, error, reload].
export function useLoad (load, deps, refreshMs = 0) {
  const [data, setData] = useState(null)
  const [error, setError] = useState(null)
  const reload = useCallback(() => {
    load().then(d => { setData(d); setError(null) }, e => setError(e))
  }, deps)
  useEffect(() => {
    reload()
    if (!refreshMs) return
    const t = setInterval(() => { if (!document.hidden) reload() }, refreshMs)
    return () => clearInterval(t)
  }, [reload])
  return [data, error, reload]
}

export const num = n => (n === undefined || n === null) ? '–' : Number(n).toLocaleString('en')
export function bytes (n) {
  if (n === undefined || n === null) return '–'
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++ }
  return (i ? n.toFixed(1) : n) + ' ' + u[i]
}
export const time = ms => ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '–'
export function ago (ms) {
  if (!ms) return '–'
  const s = Math.round((Date.now() - ms) / 1000)
  if (s < 60) return s + ' s ago'
  if (s < 3600) return Math.round(s / 60) + ' min ago'
  return Math.round(s / 3600) + ' h ago'
}
export function duration (ms) {
  if (ms === undefined || ms === null) return '–'
  if (ms < 1000) return ms + ' ms'
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s'
  if (ms < 3600000) return (ms / 60000).toFixed(1) + ' min'
  return (ms / 3600000).toFixed(1) + ' h'
}

export function ErrorBox ({ error }) {
  if (!error) return null
  return html`<div class="error" role="alert" data-testid="error">${error.code ? html`<b>${error.code}</b> ` : ''}${error.message}</div>`
}

// go navigates to a console route (hash routing: the server serves one page).
export const go = route => { location.hash = '#/' + route }
export const link = route => '#/' + route

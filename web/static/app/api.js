// The console's only door to Eddy: the public /v1 API with the token the
// user gave, kept in sessionStorage (never a cookie: no CSRF surface).
// URLs are relative to the console's own, so it works behind a proxy.

const KEY = 'eddy.token'
const root = new URL('..', document.baseURI) // the console is served at <root>/console/

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: t => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY)
}

// An answer that is not 2xx: Eddy's {error:{code,message}} with the status.
export class APIError extends Error {
  constructor (status, code, message) {
    super(message || code || ('HTTP ' + status))
    this.status = status
    this.code = code
  }
}

// The tenant the operator looks at ('' = its own); paths under /v1 then
// go through /v1/tenants/{t}, as the API allows for operators.
let viewTenant = ''
export function setViewTenant (t) { viewTenant = t || '' }
export function tenantPath (p) {
  return viewTenant ? 'v1/tenants/' + encodeURIComponent(viewTenant) + '/' + p : 'v1/' + p
}

export async function api (method, path, body, opts = {}) {
  const headers = { Authorization: 'Bearer ' + token.get() }
  let payload = body
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer) && typeof body !== 'string') {
    headers['Content-Type'] = 'application/json'
    payload = JSON.stringify(body)
  } else if (opts.type) {
    headers['Content-Type'] = opts.type
  }
  const res = await fetch(new URL(path, root), { method, headers, body: payload, signal: opts.signal })
  if (res.status === 204) return null
  const text = await res.text()
  let data = null
  try { data = text ? JSON.parse(text) : null } catch (e) { data = text }
  if (!res.ok) {
    const err = data && data.error ? data.error : {}
    throw new APIError(res.status, err.code, err.message || String(text).slice(0, 200))
  }
  return data
}

// GET a tenant-scoped path (topics, groups, transforms ...).
export const tget = (p, opts) => api('GET', tenantPath(p), undefined, opts)
export const tcall = (method, p, body, opts) => api(method, tenantPath(p), body, opts)

// sse reads a Server-Sent Events stream with fetch (EventSource cannot send
// the Authorization header), calling onEvent(name, data) per event, until
// signal aborts or the stream ends.
export async function sse (path, onEvent, signal) {
  const res = await fetch(new URL(path, root), { headers: { Authorization: 'Bearer ' + token.get(), Accept: 'text/event-stream' }, signal })
  if (!res.ok) {
    let err = {}
    try { err = (await res.json()).error || {} } catch (e) {}
    throw new APIError(res.status, err.code, err.message)
  }
  const reader = res.body.getReader()
  const dec = new TextDecoder()
  let buf = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buf += dec.decode(value, { stream: true })
    let i
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i)
      buf = buf.slice(i + 2)
      let name = 'message'
      const data = []
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim()
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
      }
      if (data.length) onEvent(name, data.join('\n'))
    }
  }
}

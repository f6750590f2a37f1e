// The console's shell: login, what the token may do (GET /v1/whoami), the
// navigation, and the hash router that picks a page.
import { render } from '../vendor/preact.mjs'
import { useState, useEffect } from '../vendor/hooks.mjs'
import { api, token, setViewTenant } from './api.js'
import { html, ErrorBox, link } from './ui.js'
import { Overview } from './pages/overview.js'
import { Topics, Topic } from './pages/topics.js'
import { Records } from './pages/records.js'
import { Tail } from './pages/tail.js'
import { Groups, Group } from './pages/groups.js'
import { Transforms } from './pages/transforms.js'
import { Links } from './pages/links.js'
import { Cluster } from './pages/cluster.js'
import { Tenants } from './pages/tenants.js'
import { MQTT } from './pages/mqtt.js'

// A token handed over in the fragment (eddy console) is taken and removed
// from the address bar at once: it never reaches history or a server log.
if (location.hash.startsWith('#t=')) {
  token.set(decodeURIComponent(location.hash.slice(3)))
  history.replaceState(null, '', location.pathname + location.search + '#/')
}

function Login ({ onLogin, error }) {
  const [text, setText] = useState('')
  const drop = e => {
    e.preventDefault()
    const f = e.dataTransfer.files[0]
    if (f) f.text().then(t => setText(t.trim()))
  }
  const submit = e => { e.preventDefault(); onLogin(text.trim()) }
  return html`
    <main class="login" onDragOver=${e => e.preventDefault()} onDrop=${drop}>
      <h1>Eddy</h1>
      <form onSubmit=${submit}>
        <label for="token">Paste a token (JWT), or drop <code>admin.token</code> here</label>
        <textarea id="token" data-testid="token" rows="5" value=${text} onInput=${e => setText(e.target.value)}></textarea>
        <button type="submit" data-testid="login">Log in</button>
      </form>
      <${ErrorBox} error=${error} />
      <p class="hint">The token stays in this tab (sessionStorage). <code>eddy console</code> opens this page logged in.</p>
    </main>`
}

function route () {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent)
  return parts[0] === '' ? ['overview'] : parts
}

function App () {
  const [me, setMe] = useState(null)
  const [error, setError] = useState(null)
  const [r, setRoute] = useState(route())
  const [tenant, setTenant] = useState('')
  useEffect(() => {
    const on = () => setRoute(route())
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  const login = t => {
    if (t) token.set(t)
    if (!token.get()) return
    api('GET', 'v1/whoami').then(setMe, e => { token.clear(); setMe(null); setError(e) })
  }
  useEffect(() => login(), [])
  if (!me) return html`<${Login} onLogin=${login} error=${error} />`
  const logout = () => { token.clear(); setMe(null); setError(null) }
  const pick = t => { setViewTenant(t === me.tenant ? '' : t); setTenant(t === me.tenant ? '' : t) }
  const shown = tenant || me.tenant
  const nav = [['overview', 'Overview'], ['topics', 'Topics'], ['groups', 'Groups'], ['transforms', 'Transforms'], ['links', 'Links'], ['mqtt', 'MQTT'], ['tenants', me.operator ? 'Tenants' : 'Tenant']]
  if (me.operator) nav.splice(1, 0, ['cluster', 'Cluster'])
  const [page, a, b] = r
  const props = { me, tenant: shown, key: shown }
  let body
  switch (page) {
    case 'overview': body = html`<${Overview} ...${props} />`; break
    case 'cluster': body = me.operator ? html`<${Cluster} ...${props} />` : null; break
    case 'topics': body = a ? html`<${Topic} ...${props} name=${a} />` : html`<${Topics} ...${props} />`; break
    case 'records': body = html`<${Records} ...${props} topic=${a} partition=${b} />`; break
    case 'tail': body = html`<${Tail} ...${props} topic=${a} />`; break
    case 'groups': body = a ? html`<${Group} ...${props} name=${a} />` : html`<${Groups} ...${props} />`; break
    case 'transforms': body = html`<${Transforms} ...${props} />`; break
    case 'links': body = html`<${Links} ...${props} />`; break
    case 'tenants': body = html`<${Tenants} ...${props} />`; break
    case 'mqtt': body = html`<${MQTT} ...${props} />`; break
  }
  return html`
    <header>
      <a class="brand" href=${link('overview')}>Eddy</a>
      <nav>${nav.map(([p, label]) => html`<a href=${link(p)} class=${p === page ? 'on' : ''} data-testid=${'nav-' + p}>${label}</a>`)}</nav>
      <span class="who" data-testid="who">
        ${me.operator ? html`<span class="badge" data-testid="operator-view">operator</span>` : ''}
        ${me.operator ? html`<${TenantSwitch} value=${shown} onPick=${pick} />` : html`<span data-testid="tenant-view">tenant ${me.tenant}</span>`}
        <button class="link" onClick=${logout} data-testid="logout">log out</button>
      </span>
    </header>
    <main>${body || html`<p>No such page.</p>`}</main>`
}

function TenantSwitch ({ value, onPick }) {
  const [list, setList] = useState([])
  useEffect(() => { api('GET', 'v1/tenants').then(d => setList(d.tenants.map(t => t.name))) }, [])
  return html`<select data-testid="tenant-switch" value=${value} onChange=${e => onPick(e.target.value)}>
    ${list.map(t => html`<option value=${t}>${t}</option>`)}</select>`
}

render(html`<${App} />`, document.getElementById('app'))

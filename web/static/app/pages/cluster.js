// Cluster (operators): nodes with their state and the partitions they
// lead and host (add a node, drain one), replica moves in progress, and
// every partition of every tenant with its leader, replicas, end offset
// and size in one call, each verifiable (its replicas' checksums).
import { useState } from '../../vendor/hooks.mjs'
import { api } from '../api.js'
import { html, useLoad, num, bytes, ErrorBox } from '../ui.js'

export function Cluster () {
  const [c, error, reload] = useLoad(() => Promise.all([api('GET', 'v1/cluster'), api('GET', 'v1/cluster/partitions')]), [], 5000)
  if (error) return html`<${ErrorBox} error=${error} />`
  if (!c) return html`<p>Loading…</p>`
  const [cl, parts] = c
  const noLeader = parts.partitions.filter(p => !p.leader).length
  const under = parts.partitions.filter(p => (p.replicas || []).length < p.replication_factor).length
  return html`
    <h1>Cluster <small>this is node ${cl.node_id}</small></h1>
    <table data-testid="nodes">
      <thead><tr><th>node</th><th>state</th><th>up</th><th>raft</th><th>http</th><th>leads</th><th>hosts</th><th>controller</th><th></th></tr></thead>
      <tbody>${cl.nodes.map(n => html`<tr class=${n.alive ? '' : 'warn'} data-testid=${'node-' + n.id}><td>${n.id}${n.this_node ? ' (this)' : ''}</td><td>${n.state}</td>
        <td>${n.alive ? 'yes' : 'no'}</td><td>${n.raft_addr}</td><td>${n.http_addr}</td><td>${n.partitions_led}</td><td>${n.partitions_hosted}</td>
        <td>${n.controller_leader ? 'leader' : n.controller_voter ? 'voter' : ''}</td>
        <td>${n.state === 'active' ? html`<button class="link" onClick=${() => drain(n, reload)} data-testid=${'drain-' + n.id}>drain</button>` : ''}</td></tr>`)}</tbody>
    </table>
    <${AddNode} onDone=${reload} />
    <h2>Moves</h2>
    ${cl.moves.length === 0 ? html`<p>None in progress.</p>` : html`<table><thead><tr><th>topic</th><th>partition</th><th>from</th><th>to</th><th>phase</th></tr></thead>
      <tbody>${cl.moves.map(m => html`<tr><td>${m.topic}</td><td>${m.partition}</td><td>${m.from}</td><td>${m.node}</td><td>${m.phase}</td></tr>`)}</tbody></table>`}
    <h2>Partitions <small>${num(parts.partitions.length)}; ${noLeader} without a leader, ${under} with replicas missing</small></h2>
    <table data-testid="cluster-partitions">
      <thead><tr><th>tenant/topic</th><th>partition</th><th>leader</th><th>replicas</th><th>log start</th><th>end</th><th>size</th><th>replicas agree</th></tr></thead>
      <tbody>${parts.partitions.map(p => html`<tr class=${p.leader ? '' : 'warn'}><td>${p.tenant}/${p.topic}</td><td>${p.partition}</td><td>${p.leader || 'none'}</td>
<td>${(p.replicas || []).join(', ')}</td><td>${num(p.log_start_offset)}</td><td>${num(p.high_watermark)}</td><td>${bytes(p.size_bytes)}</td>
        <td><${Verify} p=${p} /></td></tr>`)}</tbody>
    </table>`
}

function drain (n, reload) {
  if (!confirm('Drain node ' + n.id + '? Its replicas move to the other nodes, then it leaves the cluster.')) return
  api('DELETE', 'v1/cluster/nodes/' + n.id).then(reload, e => alert(e.message))
}

function AddNode ({ onDone }) {
  const [id, setID] = useState('')
  const [addr, setAddr] = useState('')
  const [error, setError] = useState(null)
  const [added, setAdded] = useState(null)
  const submit = e => {
    e.preventDefault()
    api('POST', 'v1/cluster/nodes', { id: Number(id), raft_addr: addr }).then(n => { setAdded(n); setError(null); onDone() }, setError)
  }
  return html`
    <form class="inline" onSubmit=${submit} data-testid="add-node">
      <input type="number" min="1" placeholder="node id" value=${id} onInput=${e => setID(e.target.value)} required />
      <input placeholder="raft address host:port" value=${addr} onInput=${e => setAddr(e.target.value)} required />
      <button>Add node</button>
    </form>
    <${ErrorBox} error=${error} />
    ${added && html`<p>Node ${added.id} is joining: start it with <code>eddy serve --join --node-id ${added.id} --raft-addr ${added.raft_addr}</code></p>`}`
}

// Verify asks every replica of a partition for its checksum (one call).
function Verify ({ p }) {
  const [r, setR] = useState(null)
  const run = () => {
    setR({ busy: true })
    const path = 'v1/tenants/' + encodeURIComponent(p.tenant) + '/topics/' + encodeURIComponent(p.topic) + '/partitions/' + p.partition + '/checksum?nodes=all'
    api('GET', path).then(setR, e => setR({ error: e.message }))
  }
  if (!r) return html`<button class="link" onClick=${run} data-testid=${'verify-' + p.tenant + '-' + p.topic + '-' + p.partition}>verify</button>`
  if (r.busy) return '…'
  if (r.error) return html`<span class="error">${r.error}</span>`
  return html`<span class=${r.consistent ? '' : 'error'} title=${r.replicas.map(x => x.node + ': ' + (x.checksum ? x.checksum.sha256.slice(0, 12) : x.error)).join('\n')}
    data-testid="verified">${r.consistent ? 'yes, up to ' + num(r.upto) : 'NO'}</span>`
}

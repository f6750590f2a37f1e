// Cluster (operators): nodes with their state and the partitions they
// lead and host, replica moves in progress, and every partition of every
// tenant with its leader, replicas, end offset and size in one call.
import { api } from '../api.js'
import { html, useLoad, num, bytes, ErrorBox } from '../ui.js'

export function Cluster () {
  const [c, error] = useLoad(() => Promise.all([api('GET', 'v1/cluster'), api('GET', 'v1/cluster/partitions')]), [], 5000)
  if (error) return html`<${ErrorBox} error=${error} />`
  if (!c) return html`<p>Loading…</p>`
  const [cl, parts] = c
  const noLeader = parts.partitions.filter(p => !p.leader).length
  const under = parts.partitions.filter(p => (p.replicas || []).length < p.replication_factor).length
  return html`
    <h1>Cluster <small>this is node ${cl.node_id}</small></h1>
    <table data-testid="nodes">
      <thead><tr><th>node</th><th>state</th><th>up</th><th>raft</th><th>http</th><th>leads</th><th>hosts</th><th>controller</th></tr></thead>
      <tbody>${cl.nodes.map(n => html`<tr class=${n.alive ? '' : 'warn'} data-testid=${'node-' + n.id}><td>${n.id}${n.this_node ? ' (this)' : ''}</td><td>${n.state}</td>
        <td>${n.alive ? 'yes' : 'no'}</td><td>${n.raft_addr}</td><td>${n.http_addr}</td><td>${n.partitions_led}</td><td>${n.partitions_hosted}</td>
        <td>${n.controller_leader ? 'leader' : n.controller_voter ? 'voter' : ''}</td></tr>`)}</tbody>
    </table>
    <h2>Moves</h2>
    ${cl.moves.length === 0 ? html`<p>None in progress.</p>` : html`<table><thead><tr><th>topic</th><th>partition</th><th>from</th><th>to</th><th>phase</th></tr></thead>
      <tbody>${cl.moves.map(m => html`<tr><td>${m.topic}</td><td>${m.partition}</td><td>${m.from}</td><td>${m.node}</td><td>${m.phase}</td></tr>`)}</tbody></table>`}
    <h2>Partitions <small>${num(parts.partitions.length)}; ${noLeader} without a leader, ${under} with replicas missing</small></h2>
    <table data-testid="cluster-partitions">
      <thead><tr><th>tenant/topic</th><th>partition</th><th>leader</th><th>replicas</th><th>log start</th><th>end</th><th>size</th></tr></thead>
      <tbody>${parts.partitions.map(p => html`<tr class=${p.leader ? '' : 'warn'}><td>${p.tenant}/${p.topic}</td><td>${p.partition}</td><td>${p.leader || 'none'}</td>
<td>${(p.replicas || []).join(', ')}</td><td>${num(p.log_start_offset)}</td><td>${num(p.high_watermark)}</td><td>${bytes(p.size_bytes)}</td></tr>`)}</tbody>
    </table>`
}

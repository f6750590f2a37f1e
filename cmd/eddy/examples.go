package main

import "github.com/spf13/cobra"

// examples are the help's examples of the commands that do not set their
// own, by command path (TestEveryCommandHasAnExample).
var examples = map[string]string{
	"eddy bench produce": `  eddy bench produce --topic bench --records 200000 --size 1024 --concurrency 8 --batch 100
  eddy bench produce --topic sensors --value json --size 256 --json
  eddy bench produce --topic device-config --keys 100 --records 100000   # a compacted topic: keyed records`,
	"eddy bench disk": `  eddy bench disk --dir /var/lib/eddy        # the card a gateway's data will live on
  eddy bench disk --dir . --size 65536 --count 200 -o json`,
	"eddy bench consume": `  eddy bench consume --topic bench --format batches`,
	"eddy bench group":   `  eddy bench group --topic bench --members 3 --records 300000`,
	"eddy bench kafka": `  eddy bench kafka --kafka-addr 127.0.0.1:9092 --records 200000 --compression zstd
  eddy bench kafka --consume --topic bench`,
	"eddy bench mqtt": `  eddy bench mqtt --topic events --connections 64 --messages 50000
  eddy bench mqtt --topic events --qos 0 --connections 1000 --rate 1`,
	"eddy cert create-ca": `  eddy cert create-ca --dir certs   # certs/ca.pem for every node; keep certs/ca.key off them`,
	"eddy cert create-node": `  eddy cert create-node node1 --dir certs --host 10.0.0.11 --host node1.example.com
  EDDY_RAFT_TLS_CERT=certs/node1.pem EDDY_RAFT_TLS_KEY=certs/node1.key EDDY_RAFT_TLS_CA=certs/ca.pem eddy serve ...`,
	"eddy cluster status":      `  eddy cluster status -o json`,
	"eddy cluster add-node":    `  eddy cluster add-node --id 4 --raft-addr 10.0.0.4:7100   # then on that machine: eddy serve --join --node-id 4 ...`,
	"eddy cluster remove-node": `  eddy cluster remove-node 1 --wait 10m   # its replicas move away first`,
	"eddy config print":        `  eddy config print --config /etc/eddy/eddy.yaml`,
	"eddy config validate":     `  EDDY_LOG_LEVEL=debug eddy config validate --config /etc/eddy/eddy.yaml`,
	"eddy group list":          `  eddy group list -o yaml`,
	"eddy group describe":      `  eddy group describe dashboards   # members, committed offsets, lag in records and time`,
	"eddy group delete":        `  eddy group delete dashboards`,
	"eddy group reset-offsets": `  eddy group reset-offsets dashboards --topic sensors --to earliest
  eddy group reset-offsets dashboards --topic sensors --to timestamp --timestamp-ms 1764482400000`,
	"eddy group delete-offsets": `  eddy group delete-offsets dashboards --topic sensors-v1   # the group stopped reading it: its lag goes too
  eddy group delete-offsets dashboards --topic sensors --partition 3`,
	"eddy link list":        `  eddy link list`,
	"eddy link describe":    `  eddy link describe cloud -o json`,
	"eddy link pause":       `  eddy link pause cloud    # the backlog is kept, up to its caps`,
	"eddy link resume":      `  eddy link resume cloud`,
	"eddy link delete":      `  eddy link delete cloud`,
	"eddy tenant create":    `  eddy tenant create acme --produce-records-per-sec 5000 --max-topics 10 --storage-bytes 10737418240`,
	"eddy tenant delete":    `  eddy tenant delete acme`,
	"eddy tenant describe":  `  eddy tenant describe acme   # quotas and usage`,
	"eddy tenant list":      `  eddy tenant list`,
	"eddy tenant set-quota": `  eddy tenant set-quota acme --produce-records-per-sec 10000   # the other quotas stay`,
	"eddy tenant key add": `  openssl genpkey -algorithm ed25519 -out acme.key && openssl pkey -in acme.key -pubout -out acme.pub
  eddy tenant key add acme k1 --file acme.pub --alg EdDSA`,
	"eddy tenant key list":   `  eddy tenant key list acme`,
	"eddy tenant key remove": `  eddy tenant key remove acme k1   # its tokens stop working`,
	"eddy tenant mqtt set": `  echo '{"rules":[{"filter":"factory/+/#","topic":"lines","key":"level:1"}]}' > mapping.json
  eddy tenant mqtt set acme --file mapping.json`,
	"eddy tenant mqtt clear": `  eddy tenant mqtt clear acme   # back to the default mapping`,
	"eddy token issue": `  eddy token issue --tenant acme --scopes admin --ttl 24h
  eddy token issue --tenant acme --scopes 'produce:sensors,consume:cmd' --subject dev-17 --ttl 720h
  # each device its own MQTT topics ({sub}: the subject)
  eddy token issue --tenant acme --subject dev-17 --ttl 720h \
    --scopes 'mqtt-pub:sensors/{sub}/#,mqtt-sub:cmd/{sub}/#,mqtt-client:{sub}'`,
	"eddy token sign":     `  eddy token sign --key acme.key --kid k1 --tenant acme --scopes 'produce:sensors' --subject dev-17`,
	"eddy topic create":   `  eddy topic create sensors --partitions 3 --replication-factor 3 --config retention.ms=604800000`,
	"eddy topic list":     `  eddy topic list -o json`,
	"eddy topic describe": `  eddy topic describe sensors   # partitions (offsets, leader, replicas), config, transform`,
	"eddy topic delete":   `  eddy topic delete sensors`,
	"eddy topic checksum": `  eddy topic checksum sensors 0 --upto 1000 --server http://node-2:8080   # compare replicas`,
	"eddy topic repair":   `  eddy topic repair sensors 0 --server http://node-2:8080`,
	"eddy topic set-transform": `  eddy topic set-transform sensors --module enrich --config '{"fields":{"site":"edge-01"}}' \
      --on-error dead-letter --dead-letter-topic sensors-dlq`,
	"eddy topic clear-transform": `  eddy topic clear-transform sensors`,
	"eddy transform init":        `  eddy transform init dropper && cd dropper && eddy transform build`,
	"eddy transform build":       `  eddy transform build ./dropper -o dropper.wasm`,
	"eddy transform deploy":      `  eddy transform deploy dropper dropper.wasm`,
	"eddy transform test":        `  printf 'ok\ndebug noise\n' | eddy transform test dropper --config '{"drop":"debug"}'`,
	"eddy transform list":        `  eddy transform list`,
	"eddy transform describe":    `  eddy transform describe dropper   # versions, bound topics, how it runs on this node`,
	"eddy transform delete":      `  eddy transform delete dropper --version 1`,
}

// addExamples sets the examples of the table on the commands.
func addExamples(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		addExamples(c)
	}
	if ex, ok := examples[cmd.CommandPath()]; ok && cmd.Example == "" {
		cmd.Example = ex
	}
}

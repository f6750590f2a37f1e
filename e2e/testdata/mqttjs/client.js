// MQTT.js (as a browser dashboard uses it) over WebSockets against Eddy,
// run by TestMQTTWebSocket: subscribes to cmd/#, publishes one message
// itself, and prints one JSON line with what it received once it has
// `want` messages (or after 20 s).
'use strict'
const mqtt = require('mqtt')

const [url, token, wantArg] = process.argv.slice(2)
const want = Number(wantArg)
const got = []
const client = mqtt.connect(url, { username: 'default', password: token, protocolVersion: 5, clientId: 'mqttjs-e2e', reconnectPeriod: 0 })
const finish = (error) => {
  console.log(JSON.stringify({ got, error: error ? String(error) : undefined }))
  client.end(true)
  process.exit(error ? 1 : 0)
}
const timer = setTimeout(() => finish(), 20000)
client.on('error', finish)
client.on('message', (topic, payload) => {
  got.push(topic + ' ' + payload.toString())
  if (got.length >= want) { clearTimeout(timer); finish() }
})
client.on('connect', () => {
  client.subscribe('cmd/#', { qos: 1 }, (err) => {
    if (err) return finish(err)
    console.error('subscribed')
    client.publish('cmd/ws-dev', 'from-the-browser', { qos: 1 }, (err) => { if (err) finish(err) })
  })
})

// kafkajs against Eddy, run by TestKafkaJS: the admin client creates the
// topic, an idempotent gzip producer sends n records, then a consumer group
// of two members reads them all back and commits. Prints one JSON line.
'use strict'
const { Kafka, CompressionTypes, Partitioners, logLevel } = require('kafkajs')

const [addr, token, topic, nArg] = process.argv.slice(2)
const n = Number(nArg)
const kafka = new Kafka({
  clientId: 'eddy-e2e',
  brokers: [addr],
  sasl: { mechanism: 'plain', username: 'default', password: token },
  logLevel: logLevel.WARN,
  // Logs go to stderr; stdout carries only the result.
  logCreator: () => ({ namespace, level, label, log }) =>
    console.error(label, namespace, log.message, log.error || ''),
})

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
  const listed = (await admin.listTopics()).includes(topic)
  const meta = await admin.fetchTopicMetadata({ topics: [topic] })
  const partitions = meta.topics[0].partitions.length

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const sent = []
  for (let i = 0; i < n; i += 50) {
    const messages = []
    for (let j = i; j < Math.min(n, i + 50); j++) {
      messages.push({ key: String(j % 7), value: 'js-' + j })
      sent.push('js-' + j)
    }
    await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages })
  }
  await producer.disconnect()

  const seen = new Set()
  const members = [0, 1].map(() => kafka.consumer({ groupId: 'js-group', sessionTimeout: 10000, heartbeatInterval: 500 }))
  let done
  const all = new Promise(resolve => { done = resolve })
  for (const c of members) {
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({
      eachMessage: async ({ message }) => {
        seen.add(message.value.toString())
        if (seen.size >= n) done()
      }
    })
  }
  let timer
  await Promise.race([all, new Promise(resolve => { timer = setTimeout(resolve, 60000) })])
  clearTimeout(timer)
  for (const c of members) await c.disconnect()
  const committed = await admin.fetchOffsets({ groupId: 'js-group', topics: [topic] })
  const offsets = committed[0].partitions.reduce((sum, p) => sum + Number(p.offset), 0)
  await admin.disconnect()
  console.log(JSON.stringify({
    created, listed, partitions, sent: sent.length, read: seen.size,
    all: sent.every(v => seen.has(v)), committed: offsets
  }))
}

main().catch(err => { console.log(JSON.stringify({ error: String(err) })); process.exit(1) })

# A confluent-kafka (librdkafka) client against Eddy, run by
# TestKafkaPython: an idempotent lz4 producer, then a consumer group member
# that reads everything back and commits, then a transactional producer,
# whose init_transactions must fail at once (Eddy offers no transactions).
# Prints one JSON line.
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

addr, token, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
auth = {"bootstrap.servers": addr, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
        "sasl.username": "default", "sasl.password": token}

delivered, failed = [], []
p = Producer(dict(auth, **{"enable.idempotence": True, "acks": "all", "compression.type": "lz4", "linger.ms": 5}))
for i in range(n):
    p.produce(topic, key=str(i % 7), value="py-%d" % i,
              on_delivery=lambda err, msg: (failed if err else delivered).append(str(err) if err else msg.value().decode()))
    p.poll(0)
p.flush(30)

c = Consumer(dict(auth, **{"group.id": "py-group", "auto.offset.reset": "earliest", "enable.auto.commit": False}))
c.subscribe([topic])
seen = set()
for _ in range(600):
    m = c.poll(0.1)
    if m is None or m.error():
        if len(seen) >= n:
            break
        continue
    seen.add(m.value().decode())
c.commit(asynchronous=False)
c.close()

tx = Producer(dict(auth, **{"transactional.id": "py-tx"}))
t0 = time.monotonic()
try:
    tx.init_transactions(20)
    txn = {"error": None}
except KafkaException as e:
    err = e.args[0]
    txn = {"error": err.name(), "fatal": err.fatal(), "message": err.str()}
txn["seconds"] = time.monotonic() - t0
print(json.dumps({"delivered": len(delivered), "failed": failed[:3], "read": len(seen),
                  "all": sorted(seen) == sorted(set(delivered)), "txn": txn}))

// Package tenants holds everything about who may do what, with no HTTP in
// it, so the HTTP, MQTT and Kafka listeners share one implementation:
//
//   - JWT verification (golang-jwt v5) with the algorithm pinned per key,
//     iss, aud and exp required, and a distinct error code for every way a
//     token is refused (Verifier);
//   - token issuing with the cluster's Ed25519 operator key (Signer);
//   - scopes: produce:<topic-glob>, consume:<topic-glob>, admin (within the
//     token's tenant), operator (the whole cluster) (Principal.Can), and
//     MQTT topics a device may publish and subscribe to, mqtt-pub:<filter>
//     and mqtt-sub:<filter>, and the client ids it may connect with,
//     mqtt-client:<glob> ({sub}: the token's subject; mqttscope.go);
//   - quotas: per-tenant token buckets for produce bytes/s and records/s
//     (Limiter) and the limits a tenant's topics are checked against (Quotas).
//
// Keys and tenants themselves live in the controller (package multiraft);
// the Verifier reads them through a KeyLookup.
package tenants

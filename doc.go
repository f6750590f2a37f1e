// Package eddy holds the vocabulary every other Eddy package speaks: tenants,
// topics, partitions, offsets, records and batches, and the one typed error a
// client ever sees.
//
// The package imports only the standard library. Heavy dependencies live
// behind one door each (dragonboat in multiraft, wazero in wasm, fasthttp in
// bridges/http); they talk to each other through these types.
package eddy

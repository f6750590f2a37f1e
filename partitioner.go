package eddy

// KeyPartition maps a key to a partition the way Kafka's default partitioner
// does (murmur2, sign bit cleared, modulo the partition count), so a keyed
// record lands in the same partition whether it arrives over HTTP, MQTT or
// the Kafka protocol.
func KeyPartition(key []byte, partitions int32) Partition {
	if partitions <= 0 {
		return 0
	}
	return Partition(int32(murmur2(key)&0x7fffffff) % partitions)
}

// murmur2 is Kafka's Utils.murmur2 (seed 0x9747b28c).
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	i := 0
	for ; n-i >= 4; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n - i {
	case 3:
		h ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

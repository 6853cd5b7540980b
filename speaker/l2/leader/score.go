package leader

// score is the rendezvous weight of a unit on a node: every speaker must
// compute the same, so it depends on nothing but the two hashes.
func score(unitHash, nodeHash uint64) uint64 { return mix(unitHash ^ nodeHash) }

func unitHash(id identity) uint64 {
	if !id.ip.IsValid() {
		return mix(fnv("key:" + id.key))
	}
	b := id.ip.As16()
	return mix(fnvBytes(b[:]))
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv is 64-bit FNV-1a.
func fnv(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvBytes(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// mix is the SplitMix64 finalizer: it spreads FNV's weak low-entropy output
// over all 64 bits, so that nearby IPs rank nodes independently.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Package seed derives independent, reproducible random streams from a run
// seed and a trial's identity.
//
// Every stream is a ChaCha8 generator (math/rand/v2) whose 32-byte key is
// SHA-256 of a purpose string and the identity integers. Consequently a
// stream depends only on (purpose, seed, identity): never on how many
// trials run together, on worker count, on shard or on execution order.
// Two different identities or purposes give unrelated streams.
//
// A *rand.Rand returned here is not safe for concurrent use; give each
// trial its own.
package seed

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
)

// Purposes of the streams used by the project. Keeping them as named
// constants prevents two features from silently sharing a stream.
const (
	// TrainSet draws a trial's N training points, keyed by (seed, init, trial).
	TrainSet = "perturb/trainset/v1"
	// Shuffle reorders a trial's training set between epochs, keyed by
	// (seed, init, trial, epoch).
	Shuffle = "perturb/shuffle/v1"
	// Init draws the stored weights of initialisation k of a model, keyed by
	// (model name hash, k). It does not depend on the run seed, so
	// initialisation k is the same across every config.
	Init = "perturb/init/v1"
	// SDENoise draws the Gaussian noise of a trial's SDE substeps, keyed by
	// (seed, init, trial): common to every learning rate of the trial.
	SDENoise = "perturb/sde-noise/v1"
	// Stats draws the samples of landscape-statistics estimates, keyed by
	// (seed, model name hash, init, group): separate from every trial's
	// stream, and the same whatever the number of groups estimated.
	Stats = "perturb/stats/v1"
	// TestSubset draws the pool examples of a trial's subset estimate of
	// its test loss, keyed by (seed, init, trial): independent of the
	// training set, and common to every optimiser, learning rate and dtype
	// of the trial, so paired differences share it.
	TestSubset = "perturb/test-subset/v1"
)

// Key returns the 32-byte ChaCha8 key for purpose and ids.
func Key(purpose string, ids ...uint64) [32]byte {
	h := sha256.New()
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(len(purpose)))
	h.Write(buf[:])
	h.Write([]byte(purpose))
	for _, id := range ids {
		binary.LittleEndian.PutUint64(buf[:], id)
		h.Write(buf[:])
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// New returns the stream for purpose and ids.
func New(purpose string, ids ...uint64) *rand.Rand {
	return rand.New(rand.NewChaCha8(Key(purpose, ids...)))
}

// StringID hashes s to an identity integer, for identities that are names.
func StringID(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.LittleEndian.Uint64(sum[:8])
}

// Draw returns n indices drawn uniformly with replacement from [0, pool).
func Draw(r *rand.Rand, n, pool int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = r.IntN(pool)
	}
	return idx
}

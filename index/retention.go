package index

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketRetention caches, per pack ID, a date until which the pack is known
// to be retained (S3 Object Lock; repo.ExtendRetention): a lower bound, so
// that a backup asks the storage only about packs that may be retained for
// less than its new snapshot. Created when first written; Reset drops it
// with everything else.
var bucketRetention = []byte("retention")

// RetainedUntil returns the cached retain-until date of each of packs that
// has one.
func (ix *Index) RetainedUntil(packs [][32]byte) (map[[32]byte]time.Time, error) {
	out := map[[32]byte]time.Time{}
	err := ix.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRetention)
		if b == nil {
			return nil
		}
		for _, p := range packs {
			if v := b.Get(p[:]); len(v) == 8 {
				out[p] = time.Unix(int64(binary.BigEndian.Uint64(v)), 0).UTC()
			}
		}
		return nil
	})
	return out, err
}

// SetRetainedUntil records retain-until dates of packs (whole seconds,
// rounded down), keeping a later date already recorded.
func (ix *Index) SetRetainedUntil(until map[[32]byte]time.Time) error {
	if len(until) == 0 {
		return nil
	}
	return ix.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRetention)
		if err != nil {
			return err
		}
		for p, t := range until {
			s := t.Unix()
			if v := b.Get(p[:]); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= s {
				continue
			}
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], uint64(s))
			if err := b.Put(p[:], v[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

package p2pnet

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"

	"github.com/libp2p/go-libp2p/core/pnet"
)

// pskLabel separates the private-network key from every other key derived
// from the cluster key (gossip encrypts with the cluster key itself). Changing
// it splits the cluster, so it carries a version.
const pskLabel = "varpar p2pnet private network psk v1"

// MinClusterKeyLen is the shortest cluster key accepted, in bytes.
const MinClusterKeyLen = 16

// DerivePSK derives the libp2p private-network key from the cluster key:
// HKDF-SHA256 with the cluster key as input keying material, no salt, and
// pskLabel as info, expanded to 32 bytes. Peers holding the same cluster key
// derive the same PSK; anyone else cannot complete even the first byte of a
// connection handshake.
func DerivePSK(clusterKey []byte) (pnet.PSK, error) {
	if len(clusterKey) < MinClusterKeyLen {
		return nil, fmt.Errorf("p2pnet: cluster key is %d bytes, need at least %d", len(clusterKey), MinClusterKeyLen)
	}
	k, err := hkdf.Key(sha256.New, clusterKey, nil, pskLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("p2pnet: deriving PSK: %w", err)
	}
	return pnet.PSK(k), nil
}

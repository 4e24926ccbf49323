// The audit log's Merkle tree, exactly as RFC 6962 section 2.1 defines it:
//   leaf hash  = SHA-256(0x00 || record)
//   node hash  = SHA-256(0x01 || left || right)
//   MTH of n leaves splits at the largest power of two below n.
// Inclusion and consistency proofs follow RFC 6962 2.1.1 and 2.1.2; their
// verification follows RFC 9162 2.1.3.2 and 2.1.4.2.
#ifndef KEYWARD_AUDIT_MERKLE_H_
#define KEYWARD_AUDIT_MERKLE_H_

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyward::audit {

using Hash = std::array<uint8_t, 32>;

Hash LeafHash(absl::string_view record);
Hash NodeHash(const Hash& left, const Hash& right);
Hash EmptyRoot();
std::string ToHex(const Hash& h);
bool FromHex(absl::string_view hex, Hash* out);

// The compact range of the first n leaves: the roots of the perfect,
// aligned subtrees their count decomposes into (one per bit of n, largest
// first).  MTH of the n leaves is their fold from the right, so they are
// all a pruned history needs to keep for later trees to extend it.
std::vector<uint64_t> CompactRangeSizes(uint64_t n);
Hash RootOfCompactRange(const std::vector<Hash>& nodes);  // EmptyRoot() for none

// Leaf hashes in memory (32 bytes per retained record) plus a cache of
// perfect subtrees, so roots and proofs for any size cost O(log n) hashes
// once warm.  After Prune(p) only the compact range of the first p leaves
// is kept: roots and proofs for trees of p or more leaves still work,
// anything that needs a pruned leaf returns kFailedPrecondition.
// Thread-safe.
class MerkleTree {
 public:
  void Append(const Hash& leaf);
  uint64_t size() const;
  uint64_t pruned() const;            // leaves before this one are gone
  Hash LeafAt(uint64_t index) const;  // REQUIRES: pruned() <= index < size()
  // The same, checked under the tree's lock: false for a leaf pruned (or
  // not yet appended) by the time it is asked for.
  bool TryLeafAt(uint64_t index, Hash* out) const;

  // MTH of the first `n` leaves.  Errors: kOutOfRange when n > size();
  // kFailedPrecondition when 0 < n < pruned().
  absl::StatusOr<Hash> Root(uint64_t n) const;
  // Audit path of leaf `index` in the tree of the first `n` leaves.
  absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t n) const;
  // Proof that the tree of `m` leaves is a prefix of the tree of `n`.
  absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t m, uint64_t n) const;
  // The compact range of the first `n` leaves (n >= pruned()).
  absl::StatusOr<std::vector<Hash>> CompactRange(uint64_t n) const;

  // Forgets leaves 0..p-1, keeping their compact range.  REQUIRES: p <= size().
  absl::Status Prune(uint64_t p);
  // Starts a tree whose first `p` leaves are known only by their compact
  // range `nodes` (a log whose oldest records were pruned).  REQUIRES:
  // empty tree.  Errors: kInvalidArgument when `nodes` does not fit `p`.
  absl::Status StartAfterPruned(uint64_t p, std::vector<Hash> nodes);

 private:
  Hash Subtree(uint64_t start, uint64_t end) const;  // REQUIRES: mu_
  void Path(uint64_t m, uint64_t start, uint64_t end, std::vector<Hash>* out) const;
  void SubProof(uint64_t m, uint64_t start, uint64_t end, bool b,
                std::vector<Hash>* out) const;

  mutable std::mutex mu_;
  uint64_t pruned_ = 0;
  // Compact range of the pruned leaves: key = start << 8 | log2(size).
  absl::flat_hash_map<uint64_t, Hash> pruned_nodes_;
  std::vector<Hash> leaves_;  // leaves pruned_.. ; leaves_[0] is leaf pruned_
  // Perfect, aligned subtrees of 2^k leaves (k >= 8): key = k << 48 | index.
  mutable absl::flat_hash_map<uint64_t, Hash> perfect_;
};

bool VerifyInclusion(const Hash& leaf, uint64_t index, uint64_t n,
                     const std::vector<Hash>& proof, const Hash& root);
bool VerifyConsistency(uint64_t m, uint64_t n, const Hash& root_m,
                       const Hash& root_n, const std::vector<Hash>& proof);

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_MERKLE_H_

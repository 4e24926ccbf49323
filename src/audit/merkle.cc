#include "audit/merkle.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/hash.h"

namespace keyward::audit {
namespace {

constexpr uint64_t kCacheLevel = 8;

uint64_t LargestPowerOfTwoBelow(uint64_t n) {  // REQUIRES: n > 1
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

absl::Status PrunedError(uint64_t n) {
  return absl::FailedPreconditionError(absl::StrCat(
      "the tree of ", n, " records needs records that were pruned from the live log; "
      "verify against the archive (keyward audit verify --archive DIR)"));
}

absl::string_view View(const Hash& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}

}  // namespace

Hash LeafHash(absl::string_view record) {
  const char prefix = 0x00;
  return crypto::Sha256Concat({absl::string_view(&prefix, 1), record});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  const char prefix = 0x01;
  return crypto::Sha256Concat({absl::string_view(&prefix, 1), View(left), View(right)});
}

Hash EmptyRoot() { return crypto::Sha256(""); }

std::string ToHex(const Hash& h) { return absl::BytesToHexString(View(h)); }

bool FromHex(absl::string_view hex, Hash* out) {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::vector<uint64_t> CompactRangeSizes(uint64_t n) {
  std::vector<uint64_t> sizes;
  for (int bit = 63; bit >= 0; --bit) {
    if ((n >> bit) & 1) sizes.push_back(uint64_t{1} << bit);
  }
  return sizes;
}

Hash RootOfCompactRange(const std::vector<Hash>& nodes) {
  if (nodes.empty()) return EmptyRoot();
  Hash r = nodes.back();
  for (size_t i = nodes.size() - 1; i-- > 0;) r = NodeHash(nodes[i], r);
  return r;
}

namespace {
uint64_t Log2(uint64_t pow2) {
  uint64_t l = 0;
  while ((uint64_t{1} << l) < pow2) ++l;
  return l;
}
uint64_t NodeKey(uint64_t start, uint64_t size) { return start << 8 | Log2(size); }
}  // namespace

absl::Status MerkleTree::Prune(uint64_t p) {
  std::lock_guard<std::mutex> lock(mu_);
  if (p <= pruned_) return absl::OkStatus();
  if (p > pruned_ + leaves_.size()) return absl::OutOfRangeError("cannot prune beyond the tree");
  absl::flat_hash_map<uint64_t, Hash> nodes;
  uint64_t start = 0;
  for (uint64_t s : CompactRangeSizes(p)) {
    nodes[NodeKey(start, s)] = Subtree(start, start + s);
    start += s;
  }
  leaves_.erase(leaves_.begin(), leaves_.begin() + static_cast<ptrdiff_t>(p - pruned_));
  // Cached subtrees of pruned leaves are no longer reachable but through the
  // compact range: drop them.
  for (auto it = perfect_.begin(); it != perfect_.end();) {
    const uint64_t level = it->first >> 48, index = it->first & ((uint64_t{1} << 48) - 1);
    if ((index << level) < p) {
      perfect_.erase(it++);
    } else {
      ++it;
    }
  }
  pruned_nodes_ = std::move(nodes);
  pruned_ = p;
  return absl::OkStatus();
}

absl::Status MerkleTree::StartAfterPruned(uint64_t p, std::vector<Hash> nodes) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::vector<uint64_t> sizes = CompactRangeSizes(p);
  if (!leaves_.empty() || pruned_ != 0 || sizes.size() != nodes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the pruned history's compact range has ", nodes.size(), " nodes; ", p,
        " records need ", sizes.size()));
  }
  uint64_t start = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    pruned_nodes_[NodeKey(start, sizes[i])] = nodes[i];
    start += sizes[i];
  }
  pruned_ = p;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Hash>> MerkleTree::CompactRange(uint64_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (n > pruned_ + leaves_.size() || (n < pruned_ && n != 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat("no compact range of ", n, " records (", pruned_, " pruned)"));
  }
  std::vector<Hash> out;
  uint64_t start = 0;
  for (uint64_t s : CompactRangeSizes(n)) {
    out.push_back(Subtree(start, start + s));
    start += s;
  }
  return out;
}

uint64_t MerkleTree::pruned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pruned_;
}

void MerkleTree::Append(const Hash& leaf) {
  std::lock_guard<std::mutex> lock(mu_);
  leaves_.push_back(leaf);
}

uint64_t MerkleTree::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pruned_ + leaves_.size();
}

Hash MerkleTree::LeafAt(uint64_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return leaves_[index - pruned_];
}

bool MerkleTree::TryLeafAt(uint64_t index, Hash* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (index < pruned_ || index >= pruned_ + leaves_.size()) return false;
  *out = leaves_[index - pruned_];
  return true;
}

Hash MerkleTree::Subtree(uint64_t start, uint64_t end) const {
  const uint64_t n = end - start;
  if (start < pruned_) {
    // The public methods only ask for ranges that are kept nodes or that
    // split into them ; a perfect subtree inside a kept node
    // is never reached because the recursion stops at the node.
    auto it = pruned_nodes_.find(NodeKey(start, n));
    if (it != pruned_nodes_.end() && (n & (n - 1)) == 0) return it->second;
  }
  if (n == 1) return leaves_[start - pruned_];
  // A perfect, aligned subtree of at least 2^8 leaves is cached.
  if ((n & (n - 1)) == 0 && n >= (uint64_t{1} << kCacheLevel) && start % n == 0) {
    uint64_t level = 0;
    while ((uint64_t{1} << level) < n) ++level;
    const uint64_t key = (level << 48) | (start / n);
    auto it = perfect_.find(key);
    if (it != perfect_.end()) return it->second;
    const Hash h = NodeHash(Subtree(start, start + n / 2), Subtree(start + n / 2, end));
    perfect_.emplace(key, h);
    return h;
  }
  const uint64_t k = LargestPowerOfTwoBelow(n);
  return NodeHash(Subtree(start, start + k), Subtree(start + k, end));
}

absl::StatusOr<Hash> MerkleTree::Root(uint64_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (n > pruned_ + leaves_.size()) {
    return absl::OutOfRangeError(absl::StrCat("the log holds ", pruned_ + leaves_.size(),
                                              " records, not ", n));
  }
  if (n == 0) return EmptyRoot();
  if (n < pruned_) return PrunedError(n);
  return Subtree(0, n);
}

// PATH(m, D[start:end]) of RFC 6962 2.1.1, m relative to start.
void MerkleTree::Path(uint64_t m, uint64_t start, uint64_t end,
                      std::vector<Hash>* out) const {
  const uint64_t n = end - start;
  if (n <= 1) return;
  const uint64_t k = LargestPowerOfTwoBelow(n);
  if (m < k) {
    Path(m, start, start + k, out);
    out->push_back(Subtree(start + k, end));
  } else {
    Path(m - k, start + k, end, out);
    out->push_back(Subtree(start, start + k));
  }
}

absl::StatusOr<std::vector<Hash>> MerkleTree::InclusionProof(uint64_t index,
                                                             uint64_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (n > pruned_ + leaves_.size() || index >= n) {
    return absl::OutOfRangeError(absl::StrCat("no record ", index, " in a tree of ", n));
  }
  if (index < pruned_) return PrunedError(index + 1);
  std::vector<Hash> out;
  Path(index, 0, n, &out);
  return out;
}

// SUBPROOF(m, D[start:end], b) of RFC 6962 2.1.2.
void MerkleTree::SubProof(uint64_t m, uint64_t start, uint64_t end, bool b,
                          std::vector<Hash>* out) const {
  const uint64_t n = end - start;
  if (m == n) {
    if (!b) out->push_back(Subtree(start, end));
    return;
  }
  const uint64_t k = LargestPowerOfTwoBelow(n);
  if (m <= k) {
    SubProof(m, start, start + k, b, out);
    out->push_back(Subtree(start + k, end));
  } else {
    SubProof(m - k, start + k, end, false, out);
    out->push_back(Subtree(start, start + k));
  }
}

absl::StatusOr<std::vector<Hash>> MerkleTree::ConsistencyProof(uint64_t m,
                                                               uint64_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (n > pruned_ + leaves_.size() || m > n) {
    return absl::OutOfRangeError(absl::StrCat("no consistency proof from ", m, " to ", n));
  }
  if (m != 0 && m < pruned_) return PrunedError(m);
  std::vector<Hash> out;
  if (m == 0 || m == n) return out;
  SubProof(m, 0, n, true, &out);
  return out;
}

bool VerifyInclusion(const Hash& leaf, uint64_t index, uint64_t n,
                     const std::vector<Hash>& proof, const Hash& root) {
  if (index >= n) return false;
  uint64_t fn = index, sn = n - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0) return false;
    if ((fn & 1) == 1 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

bool VerifyConsistency(uint64_t m, uint64_t n, const Hash& root_m,
                       const Hash& root_n, const std::vector<Hash>& proof) {
  if (m > n) return false;
  if (m == n) return proof.empty() && root_m == root_n;
  if (m == 0) return proof.empty();
  std::vector<Hash> path = proof;
  // If m is a power of two, the old root itself starts the path.
  if ((m & (m - 1)) == 0) path.insert(path.begin(), root_m);
  if (path.empty()) return false;
  uint64_t fn = m - 1, sn = n - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0], sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return false;
    if ((fn & 1) == 1 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && fr == root_m && sr == root_n;
}

}  // namespace keyward::audit

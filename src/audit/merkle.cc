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

void MerkleTree::Append(const Hash& leaf) {
  std::lock_guard<std::mutex> lock(mu_);
  leaves_.push_back(leaf);
}

uint64_t MerkleTree::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leaves_.size();
}

Hash MerkleTree::LeafAt(uint64_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return leaves_[index];
}

Hash MerkleTree::Subtree(uint64_t start, uint64_t end) const {
  const uint64_t n = end - start;
  if (n == 1) return leaves_[start];
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
  if (n > leaves_.size()) {
    return absl::OutOfRangeError(absl::StrCat("the log holds ", leaves_.size(),
                                              " records, not ", n));
  }
  if (n == 0) return EmptyRoot();
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
  if (n > leaves_.size() || index >= n) {
    return absl::OutOfRangeError(absl::StrCat("no record ", index, " in a tree of ", n));
  }
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
  if (n > leaves_.size() || m > n) {
    return absl::OutOfRangeError(absl::StrCat("no consistency proof from ", m, " to ", n));
  }
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

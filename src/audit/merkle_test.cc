#include "audit/merkle.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::audit {
namespace {

// The RFC 6962 test leaves used across Certificate Transparency
// implementations, and their tree heads for sizes 1..8 (cross-checked with an
// independent Python implementation of MTH).
const std::vector<std::string> kLeaves = {
    "", std::string("\x00", 1), "\x10", "\x20\x21", "\x30\x31", "\x40\x41\x42\x43",
    "\x50\x51\x52\x53\x54\x55\x56\x57",
    "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
const char* kRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

TEST(MerkleTest, Rfc6962TreeHeads) {
  MerkleTree tree;
  EXPECT_EQ(ToHex(*tree.Root(0)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  for (size_t i = 0; i < kLeaves.size(); ++i) {
    tree.Append(LeafHash(kLeaves[i]));
    EXPECT_EQ(ToHex(*tree.Root(i + 1)), kRoots[i]) << "size " << i + 1;
  }
  // Earlier sizes stay answerable.
  EXPECT_EQ(ToHex(*tree.Root(3)), kRoots[2]);
  EXPECT_FALSE(tree.Root(9).ok());
}

TEST(MerkleTest, EveryInclusionAndConsistencyProofVerifies) {
  MerkleTree tree;
  for (int i = 0; i < 1300; ++i) tree.Append(LeafHash(absl::StrCat("record ", i)));
  for (uint64_t n : {1, 2, 3, 7, 8, 9, 255, 256, 257, 1024, 1300}) {
    const Hash root = *tree.Root(n);
    for (uint64_t i = 0; i < n; i += (n / 7) + 1) {
      auto proof = tree.InclusionProof(i, n);
      ASSERT_TRUE(proof.ok());
      EXPECT_TRUE(VerifyInclusion(tree.LeafAt(i), i, n, *proof, root)) << i << "/" << n;
      EXPECT_FALSE(VerifyInclusion(tree.LeafAt((i + 1) % n), i, n, *proof, root) && n > 1)
          << "a proof must not verify another leaf";
    }
    for (uint64_t m : {uint64_t{1}, n / 2, n - 1, n}) {
      if (m == 0 || m > n) continue;
      auto proof = tree.ConsistencyProof(m, n);
      ASSERT_TRUE(proof.ok());
      EXPECT_TRUE(VerifyConsistency(m, n, *tree.Root(m), root, *proof)) << m << "->" << n;
      if (m < n && m > 0) {
        Hash wrong = *tree.Root(m);
        wrong[0] ^= 1;
        EXPECT_FALSE(VerifyConsistency(m, n, wrong, root, *proof));
      }
    }
  }
}

}  // namespace
}  // namespace keyward::audit

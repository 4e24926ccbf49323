// The stream fuzzer's invariant is only as good as its list of seed
// plaintexts: every seed in the corpus must decrypt to one of them, and
// each of them must be in the corpus.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "format/stream_fuzz_seeds.h"
#include "gtest/gtest.h"
#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"
#include "testing/status_matchers.h"

namespace keyward::format {
namespace {

TEST(StreamFuzzCorpus, SeedsDecryptToTheListedPlaintexts) {
  KW_ASSERT_OK_AND_ASSIGN(auto keyring,
                          RawAesKeyring::FromKey(SecretData::CopyFrom(
                              std::string(32, testing::kStreamFuzzKeyByte))));
  const KeyUnwrapper* keyrings[] = {keyring.get()};
  const auto& listed = testing::StreamFuzzSeedPlaintexts();
  std::set<std::string> seen;
  int seeds = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator("tests/fuzz-corpus/stream_decrypt_fuzzer")) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    auto plaintext = DecryptMessage(ss.str(), keyrings);
    ASSERT_TRUE(plaintext.ok()) << entry.path() << ": " << plaintext.status();
    const std::string p(plaintext->AsStringView());
    EXPECT_NE(std::find(listed.begin(), listed.end(), p), listed.end()) << entry.path();
    seen.insert(p);
    ++seeds;
  }
  EXPECT_GE(seeds, 4);
  EXPECT_EQ(seen.size(), listed.size());
}

}  // namespace
}  // namespace keyward::format

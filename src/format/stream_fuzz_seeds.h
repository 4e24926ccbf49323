// What the stream decryptor fuzzer's seed corpus
// (tests/fuzz-corpus/stream_decrypt_fuzzer) holds: messages under a raw key
// of 32 bytes 0x11, whose plaintexts are exactly these.  The fuzzer checks
// that a decryption that succeeds returns one of them, and that one that
// fails wrote at most a prefix of one; format_test checks the corpus.
#ifndef KEYWARD_FORMAT_STREAM_FUZZ_SEEDS_H_
#define KEYWARD_FORMAT_STREAM_FUZZ_SEEDS_H_

#include <string>
#include <vector>

namespace keyward::format::testing {

inline constexpr char kStreamFuzzKeyByte = '\x11';

const std::vector<std::string>& StreamFuzzSeedPlaintexts();

}  // namespace keyward::format::testing

#endif  // KEYWARD_FORMAT_STREAM_FUZZ_SEEDS_H_

// Fuzzes the stream decryptor with a fixed raw key.  The seed corpus
// (tests/fuzz-corpus/stream_decrypt_fuzzer, format/stream_fuzz_seeds.h)
// holds valid messages under that key, so mutations reach frame parsing and
// authentication.  Checked on every input:
//   - a decryption that succeeds returns exactly one of the seeds'
//     plaintexts (nothing can be forged under the key);
//   - one that fails wrote nothing but a prefix of one of them (frames are
//     released only after they verify).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "format/stream_fuzz_seeds.h"
#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"

namespace {

bool IsSeedPlaintext(const std::string& out, bool whole) {
  for (const std::string& p : keyward::format::testing::StreamFuzzSeedPlaintexts()) {
    if (whole ? out == p : p.compare(0, out.size(), out) == 0 && out.size() <= p.size()) {
      return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const keyward::Keyring* keyring = [] {
    auto k = keyward::RawAesKeyring::FromKey(keyward::SecretData::CopyFrom(
        std::string(32, keyward::format::testing::kStreamFuzzKeyByte)));
    if (!k.ok()) std::abort();
    return k->release();
  }();
  keyward::StringInputStream in(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  std::string out;
  keyward::StringOutputStream sink(&out);
  const keyward::KeyUnwrapper* keyrings[] = {keyring};
  keyward::DecryptOptions options;
  options.max_frame_size = 1 << 16;
  const absl::Status s = keyward::DecryptStream(in, sink, keyrings, options);
  if (!IsSeedPlaintext(out, s.ok())) {
    std::fprintf(stderr, "stream decrypt %s returned %zu bytes that no seed encrypted\n",
                 s.ok() ? "succeeded and" : "failed but", out.size());
    std::abort();
  }
  return 0;
}

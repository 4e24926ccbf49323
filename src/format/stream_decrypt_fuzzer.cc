// Fuzzes the stream decryptor with a fixed raw key.  The seed corpus
// (tests/fuzz-corpus/stream_decrypt_fuzzer) holds valid messages under that
// key, so mutations reach frame parsing and authentication.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const keyward::Keyring* keyring = [] {
    auto k = keyward::RawAesKeyring::FromKey(
        keyward::SecretData::CopyFrom(std::string(32, '\x11')));
    if (!k.ok()) std::abort();
    return k->release();
  }();
  keyward::StringInputStream in(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  std::string out;
  keyward::StringOutputStream sink(&out);
  const keyward::Keyring* keyrings[] = {keyring};
  keyward::DecryptOptions options;
  options.max_frame_size = 1 << 16;
  absl::Status s = keyward::DecryptStream(in, sink, keyrings, options);
  // Plaintext only ever comes out of frames that verified, and a message
  // under a random fuzzed key cannot verify.
  (void)s;
  return 0;
}

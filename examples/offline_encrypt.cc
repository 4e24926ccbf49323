// Encrypt and decrypt one record offline with a raw key.
//   build/release/examples/offline_encrypt
// Raw keys are for tests and offline use; production code uses the KMS
// keyring so that keys never leave keywardd.
#include <cstdio>
#include <string>

#include "keyward/errors.h"
#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"

int main() {
  auto keyring = keyward::RawAesKeyring::Generate();
  if (!keyring.ok()) {
    std::fprintf(stderr, "%s\n", keyring.status().ToString().c_str());
    return 1;
  }
  const keyward::Keyring* key = keyring->get();
  const keyward::KeyWrapper* wrappers[] = {key};
  const keyward::KeyUnwrapper* unwrappers[] = {key};
  // The context is authenticated and stored in clear: name the data, never
  // put secrets in it.
  const keyward::EncryptionContext context = {{"tenant", "acme"},
                                              {"table", "cards"}};

  auto message = keyward::EncryptMessage("4111 1111 1111 1111", context, wrappers);
  if (!message.ok()) {
    std::fprintf(stderr, "encrypt: %s\n", message.status().ToString().c_str());
    return 1;
  }

  keyward::DecryptOptions options;
  options.expected_context = {{"tenant", "acme"}};
  auto plaintext = keyward::DecryptMessage(*message, unwrappers, options);
  if (!plaintext.ok()) {
    std::fprintf(stderr, "decrypt: %s (%s)\n",
                 plaintext.status().ToString().c_str(),
                 std::string(keyward::ErrorCodeName(
                                 keyward::GetErrorCode(plaintext.status())))
                     .c_str());
    return 1;
  }
  std::printf("%zu-byte message decrypted to %zu bytes\n", message->size(),
              plaintext->size());

  // Tampering is detected with a typed error.
  std::string tampered = *message;
  tampered[tampered.size() - 1] ^= 1;
  auto bad = keyward::DecryptMessage(tampered, unwrappers, options);
  std::printf("tampered message: %s\n",
              std::string(keyward::ErrorCodeName(
                              keyward::GetErrorCode(bad.status())))
                  .c_str());
  return bad.ok() ? 1 : 0;
}

// Encrypt and decrypt records through keywardd with the SDK.
//   keywardd running (make run), then:
//   build/release/examples/kms_encrypt .keyward-dev/dev/app.yaml payments/cards
// The key must exist (keyward --config .keyward-dev/dev/admin.yaml key create payments/cards).
#include <cstdio>
#include <string>

#include "keyward/client.h"
#include "keyward/encryptor.h"
#include "keyward/errors.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: kms_encrypt CLIENT_CONFIG KEY_NAME\n");
    return 2;
  }
  // One Client per process: it holds the mutual TLS connections.
  auto options = keyward::LoadClientConfig(argv[1]);
  if (!options.ok()) {
    std::fprintf(stderr, "%s\n", std::string(options.status().message()).c_str());
    return 1;
  }
  auto client = keyward::Client::Connect(*options);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", std::string(client.status().message()).c_str());
    return 1;
  }
  // One Encryptor per key: thread-safe, caches data keys per context.
  keyward::EncryptorOptions encryptor_options;
  encryptor_options.key_name = argv[2];
  keyward::Encryptor encryptor(client->get(), encryptor_options);

  const keyward::EncryptionContext context = {{"tenant", "acme"}, {"table", "cards"}};
  for (int i = 0; i < 3; ++i) {
    auto message = encryptor.Encrypt("card " + std::to_string(i), context);
    if (!message.ok()) {
      std::fprintf(stderr, "encrypt: %s\n", std::string(message.status().message()).c_str());
      return 1;
    }
    // Store `*message` (a self-describing Keyward message) in your database.
    auto plaintext = encryptor.Decrypt(*message, {{"tenant", "acme"}});
    if (!plaintext.ok()) {
      std::fprintf(stderr, "decrypt: %s [%s]\n",
                   std::string(plaintext.status().message()).c_str(),
                   std::string(keyward::ErrorCodeName(
                                   keyward::GetErrorCode(plaintext.status())))
                       .c_str());
      return 1;
    }
    std::printf("%zu-byte message -> \"%s\"\n", message->size(),
                std::string(plaintext->AsStringView()).c_str());
  }
  const auto stats = encryptor.Stats();
  std::printf("data keys fetched: %llu for 3 messages\n",
              static_cast<unsigned long long>(stats.encrypt_cache_misses));
  return 0;
}

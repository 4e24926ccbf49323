// Encrypt and decrypt a record through keywardd: the ten lines an
// application needs (compare Tink's envelope example).
//   encrypt_record CLIENT_CONFIG KEY_NAME
// With `make run` going: encrypt_record .keyward-dev/dev/app.yaml payments/cards
#include <cstdio>

#include "keyward/data_client.h"
#include "keyward/encryptor.h"

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: encrypt_record CONFIG KEY\n"), 2;

  // --- the application code ---
  auto options = keyward::LoadClientConfig(argv[1]);
  if (!options.ok()) return std::fprintf(stderr, "%s\n", options.status().ToString().c_str()), 1;
  auto client = keyward::DataClient::Connect(*options);  // one per process
  if (!client.ok()) return std::fprintf(stderr, "%s\n", client.status().ToString().c_str()), 1;
  auto cards = keyward::Encryptor::Create(*client, {.key_name = argv[2]});  // one per key
  if (!cards.ok()) return std::fprintf(stderr, "%s\n", cards.status().ToString().c_str()), 1;

  auto message = (*cards)->Encrypt("4111 1111 1111 1111", {{"customer", "42"}});
  auto opened = message.ok() ? (*cards)->Decrypt(*message, {{"customer", "42"}})
                             : absl::StatusOr<keyward::Decrypted>(message.status());
  // --- end of the application code ---

  if (!opened.ok()) return std::fprintf(stderr, "%s\n", opened.status().ToString().c_str()), 1;
  std::printf("%zu-byte message under %s version %u decrypts to \"%.*s\"\n", message->size(),
              opened->key.key_name.c_str(), opened->key.key_version,
              static_cast<int>(opened->plaintext.size()), opened->plaintext.AsStringView().data());
  return 0;
}

// Encrypts argv[3] under key argv[2] through the keywardd that the client
// config argv[1] names, writes the message to argv[4], and decrypts it
// again.  Built against the installed libkeyward only.
#include <cstdio>
#include <fstream>
#include <string>

#include "keyward/data_client.h"
#include "keyward/encryptor.h"
#include "keyward/version.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: consumer CLIENT_CONFIG KEY TEXT OUT\n");
    return 2;
  }
  auto options = keyward::LoadClientConfig(argv[1]);
  if (!options.ok()) return std::fprintf(stderr, "%s\n", options.status().ToString().c_str()), 1;
  auto client = keyward::DataClient::Connect(*options);
  if (!client.ok()) return std::fprintf(stderr, "%s\n", client.status().ToString().c_str()), 1;
  auto encryptor = keyward::Encryptor::Create(*client, {.key_name = argv[2]});
  if (!encryptor.ok()) return std::fprintf(stderr, "%s\n", encryptor.status().ToString().c_str()), 1;
  auto message = (*encryptor)->Encrypt(argv[3], {{"app", "consumer"}});
  if (!message.ok()) return std::fprintf(stderr, "%s\n", message.status().ToString().c_str()), 1;
  std::ofstream(argv[4], std::ios::binary) << *message;
  auto opened = (*encryptor)->Decrypt(*message, {{"app", "consumer"}});
  if (!opened.ok()) return std::fprintf(stderr, "%s\n", opened.status().ToString().c_str()), 1;
  if (opened->plaintext.AsStringView() != argv[3]) return std::fprintf(stderr, "round trip differs\n"), 1;
  std::printf("libkeyward %s: %zu-byte message round-tripped\n", keyward::kVersion,
              message->size());
  return 0;
}

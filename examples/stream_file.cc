// Encrypt a file of any size to another, then decrypt it back, in bounded
// memory (one 64 KiB frame at a time).
//   stream_file CLIENT_CONFIG KEY_NAME IN ENCRYPTED DECRYPTED
// Decryption writes a frame only after it verified, so a file that fails
// half-way has already produced verified plaintext: write to a temporary
// name and rename only on success, as below.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "keyward/data_client.h"
#include "keyward/encryptor.h"
#include "keyward/io.h"

namespace {

int Fail(const char* what, const absl::Status& s) {
  std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: stream_file CONFIG KEY IN ENCRYPTED DECRYPTED\n");
    return 2;
  }
  auto options = keyward::LoadClientConfig(argv[1]);
  if (!options.ok()) return Fail("config", options.status());
  auto client = keyward::DataClient::Connect(*options);
  if (!client.ok()) return Fail("connect", client.status());
  auto files = keyward::Encryptor::Create(*client, {.key_name = argv[2]});
  if (!files.ok()) return Fail("encryptor", files.status());
  const keyward::EncryptionContext context = {{"file", "report.pdf"}};

  {
    const int in = ::open(argv[3], O_RDONLY | O_CLOEXEC);
    const int out = ::open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) return std::perror("open"), 1;
    keyward::FdInputStream source(in);
    keyward::FdOutputStream sink(out);
    if (auto s = (*files)->EncryptStream(source, sink, context); !s.ok()) return Fail("encrypt", s);
    ::close(in);
    if (::fsync(out) != 0 || ::close(out) != 0) return std::perror("close"), 1;
  }

  const std::string temporary = std::string(argv[5]) + ".partial";
  const int in = ::open(argv[4], O_RDONLY | O_CLOEXEC);
  // A new file only: never follow a link someone left at that name.
  const int out =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (in < 0 || out < 0) return std::perror("open"), 1;
  keyward::FdInputStream source(in);
  keyward::FdOutputStream sink(out);
  auto opened = (*files)->DecryptStream(source, sink, context);
  ::close(in);
  if (!opened.ok()) {
    ::close(out);
    ::unlink(temporary.c_str());  // never leave partial plaintext behind
    return Fail("decrypt", opened.status());
  }
  if (::fsync(out) != 0 || ::close(out) != 0 || ::rename(temporary.c_str(), argv[5]) != 0) {
    return std::perror("finish"), 1;
  }
  std::printf("encrypted %s to %s and back to %s (key %s version %u)\n", argv[3], argv[4],
              argv[5], opened->key.key_name.c_str(), opened->key.key_version);
  return 0;
}

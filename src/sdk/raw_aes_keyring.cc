#include "keyward/raw_aes_keyring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "format/header.h"
#include "keyward/errors.h"

namespace keyward {
namespace {

constexpr absl::string_view kFileHeader = "keyward-raw-key v1";
constexpr absl::string_view kIdLabel = "keyward raw-aes key id v1";
constexpr absl::string_view kWrapLabel = "keyward raw-aes wrap v1";
constexpr size_t kKeySize = 32;

std::string KeyId(const SecretData& key) {
  auto digest = crypto::Sha256Concat({kIdLabel, key.AsStringView()});
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), 8));
}

// Associated data binding a wrapped data key to this key and to the
// encryption context (docs/format.md#raw-aes-keyring).
std::string WrapAad(absl::string_view key_id, const EncryptionContext& ctx) {
  return absl::StrCat(kWrapLabel, key_id, format::SerializeContext(ctx));
}

}  // namespace

RawAesKeyring::RawAesKeyring(SecretData key, std::string key_id,
                             std::unique_ptr<crypto::Aead> aead)
    : key_(std::move(key)), key_id_(std::move(key_id)), aead_(std::move(aead)) {}

RawAesKeyring::~RawAesKeyring() = default;

absl::StatusOr<std::unique_ptr<RawAesKeyring>> RawAesKeyring::FromKey(
    const SecretData& key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw keys are 32 bytes (AES-256); got ", key.size()));
  }
  KW_ASSIGN_OR_RETURN(auto aead,
                      crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, key));
  return std::unique_ptr<RawAesKeyring>(
      new RawAesKeyring(key.Clone(), KeyId(key), std::move(aead)));
}

absl::StatusOr<std::unique_ptr<RawAesKeyring>> RawAesKeyring::Generate() {
  KW_ASSIGN_OR_RETURN(SecretData key, crypto::GenerateKey(kKeySize));
  return FromKey(key);
}

absl::StatusOr<std::unique_ptr<RawAesKeyring>> RawAesKeyring::LoadKeyFile(
    const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string msg = absl::StrCat("cannot open raw key file ", path, ": ",
                                   std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::UnavailableError(msg);
  }
  // A key file is a few lines; anything large is not one.
  std::string text(4096, '\0');
  ssize_t n = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (n < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot read raw key file ", path));
  }
  text.resize(static_cast<size_t>(n));
  auto not_a_key = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is not a Keyward raw key file (", why,
        "); create one with `keyward raw-key generate FILE`"));
  };
  std::string id, key_b64;
  bool header_seen = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    if (!header_seen) {
      if (line != kFileHeader) return not_a_key("missing header line");
      header_seen = true;
    } else if (absl::ConsumePrefix(&line, "id ")) {
      id = std::string(line);
    } else if (absl::ConsumePrefix(&line, "key ")) {
      key_b64 = std::string(line);
    } else {
      return not_a_key("unexpected line");
    }
  }
  if (!header_seen || id.empty() || key_b64.empty()) {
    return not_a_key("missing id or key line");
  }
  std::string raw;
  if (!absl::Base64Unescape(key_b64, &raw) || raw.size() != kKeySize) {
    std::fill(raw.begin(), raw.end(), '\0');
    return not_a_key("the key is not 32 bytes of base64");
  }
  SecretData key = SecretData::CopyFrom(raw);
  std::fill(raw.begin(), raw.end(), '\0');
  std::fill(key_b64.begin(), key_b64.end(), '\0');
  std::fill(text.begin(), text.end(), '\0');
  if (KeyId(key) != id) {
    return not_a_key("its id does not match its key: the file is corrupt");
  }
  return FromKey(key);
}

absl::Status RawAesKeyring::WriteKeyFile(const std::string& path) const {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(
          path, " already exists; Keyward never overwrites a key file"));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot create ", path, ": ", std::strerror(err)));
  }
  std::string text = absl::StrCat(
      "# Keyward raw key: for tests and offline use only.\n"
      "# Anyone who reads this file can decrypt what it protects. Keep it\n"
      "# away from that data; in production use a KMS key instead.\n",
      kFileHeader, "\nid ", key_id_, "\nkey ",
      absl::Base64Escape(key_.AsStringView()), "\n");
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, text.data(), text.size()) ==
                static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  std::fill(text.begin(), text.end(), '\0');
  if (!ok) {
    ::unlink(path.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

KeyReference RawAesKeyring::Reference() const {
  return KeyReference{kEnvironment, absl::StrCat("raw/", key_id_), 1};
}

absl::StatusOr<GeneratedDataKey> RawAesKeyring::GenerateDataKey(
    const EncryptionContext& context) const {
  KW_ASSIGN_OR_RETURN(SecretData data_key, crypto::GenerateKey(kKeySize));
  KW_ASSIGN_OR_RETURN(WrappedDataKey wrapped, WrapDataKey(data_key, context));
  return GeneratedDataKey{std::move(data_key), std::move(wrapped.encrypted),
                          std::move(wrapped.key)};
}

absl::StatusOr<WrappedDataKey> RawAesKeyring::WrapDataKey(
    const SecretData& data_key, const EncryptionContext& context) const {
  KW_RETURN_IF_ERROR(format::ValidateContext(context));
  KW_ASSIGN_OR_RETURN(std::string ciphertext,
                      aead_->Encrypt(data_key.AsStringView(),
                                     WrapAad(key_id_, context)));
  return WrappedDataKey{
      EncryptedDataKey{kProviderId, key_id_, std::move(ciphertext)},
      Reference()};
}

absl::StatusOr<SecretData> RawAesKeyring::UnwrapDataKey(
    const EncryptedDataKey& encrypted, const EncryptionContext& context) const {
  if (!Owns(encrypted)) {
    return absl::NotFoundError("wrapped for another key");
  }
  auto data_key = aead_->Decrypt(encrypted.ciphertext, WrapAad(key_id_, context));
  if (!data_key.ok()) {
    return absl::InvalidArgumentError(
        "the wrapped data key does not unwrap under this raw key with this "
        "encryption context (modified entry or context)");
  }
  return data_key;
}

bool RawAesKeyring::Owns(const EncryptedDataKey& encrypted) const {
  return encrypted.provider_id == kProviderId &&
         encrypted.provider_info == key_id_;
}

}  // namespace keyward

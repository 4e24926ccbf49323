// Offline commands: raw-key generate, encrypt/decrypt with --raw-key,
// inspect.  They need no server.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "cli/files.h"
#include "keyward/encryptor.h"
#include "keyward/errors.h"
#include "keyward/kms_keyring.h"
#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

constexpr size_t kStdoutBufferLimit = 64 << 20;

absl::StatusOr<EncryptionContext> ParseContext(
    const std::vector<std::string>& pairs) {
  EncryptionContext context;
  for (const std::string& pair : pairs) {
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(absl::StrCat("--context wants KEY=VALUE, got '", pair,
                                     "'"));
    }
    auto [it, inserted] =
        context.emplace(pair.substr(0, eq), pair.substr(eq + 1));
    if (!inserted) {
      return UsageError(
          absl::StrCat("--context key '", it->first, "' given twice"));
    }
  }
  return context;
}

absl::StatusOr<std::vector<std::shared_ptr<RawAesKeyring>>> LoadRawKeys(
    const std::vector<std::string>& paths) {
  std::vector<std::shared_ptr<RawAesKeyring>> keys;
  for (const std::string& path : paths) {
    KW_ASSIGN_OR_RETURN(auto key, RawAesKeyring::LoadKeyFile(path));
    keys.push_back(std::move(key));
  }
  return keys;
}

// The keys in one of their roles.
template <typename Role>
std::vector<const Role*> As(const std::vector<std::shared_ptr<RawAesKeyring>>& keys) {
  std::vector<const Role*> out;
  for (const auto& k : keys) out.push_back(k.get());
  return out;
}

absl::StatusOr<Suite> ParseSuite(const std::string& name) {
  if (name == "aes-256-gcm") return Suite::kAes256GcmHkdfSha256Commit;
  if (name == "chacha20-poly1305") {
    return Suite::kChaCha20Poly1305HkdfSha256Commit;
  }
  if (name == "aes-256-gcm-ecdsa-p384") return Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
  return UsageError(absl::StrCat(
      "unknown --suite '", name,
      "'; use aes-256-gcm, chacha20-poly1305 or aes-256-gcm-ecdsa-p384 (signed)"));
}

absl::StatusOr<uint32_t> ParseSize(const std::string& text) {
  uint64_t multiplier = 1;
  std::string digits = text;
  if (!digits.empty() && (digits.back() == 'K' || digits.back() == 'k')) {
    multiplier = 1024;
    digits.pop_back();
  } else if (!digits.empty() && (digits.back() == 'M' || digits.back() == 'm')) {
    multiplier = 1 << 20;
    digits.pop_back();
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value) || value * multiplier > (1u << 31)) {
    return UsageError(absl::StrCat("--frame-size wants bytes, e.g. 65536 or "
                                   "64K; got '", text, "'"));
  }
  return static_cast<uint32_t>(value * multiplier);
}

// Collects plaintext for stdout and releases it only once the whole message
// verified, so a failed decryption prints nothing.
class BufferedSecretSink final : public OutputStream {
 public:
  absl::Status Write(absl::string_view data) override {
    if (size_ + data.size() > kStdoutBufferLimit) {
      return UsageError(
          "the plaintext is larger than 64 MiB, too large to hold back until "
          "the whole message is verified; write it to a file with -o FILE "
          "(written atomically), or pass --stream to release each frame as "
          "soon as it verifies");
    }
    if (size_ + data.size() > buffer_.size()) {
      buffer_.Resize(std::max<size_t>(buffer_.size() * 2, size_ + data.size()));
    }
    std::memcpy(buffer_.data() + size_, data.data(), data.size());
    size_ += data.size();
    return absl::OkStatus();
  }
  absl::Status Flush(OutputStream& out) {
    return out.Write(buffer_.AsStringView().substr(0, size_));
  }

 private:
  SecretData buffer_;
  size_t size_ = 0;
};

struct CryptOptions {
  std::string key;  // KMS key name (encrypt)
  std::vector<std::string> raw_keys;
  std::vector<std::string> context;
  std::string output;
  std::string input;
  std::string suite = "aes-256-gcm";
  std::string frame_size;
  bool stream = false;
  bool require_signed = false;
};

absl::Status RunEncrypt(const CryptOptions& o, Globals& globals) {
  if (o.key.empty() && o.raw_keys.empty()) {
    return UsageError(
        "encrypt needs --key NAME (a KMS key; with --config) or --raw-key FILE "
        "(offline)");
  }
  KW_ASSIGN_OR_RETURN(EncryptionContext context, ParseContext(o.context));
  EncryptOptions options;
  KW_ASSIGN_OR_RETURN(options.suite, ParseSuite(o.suite));
  if (!o.frame_size.empty()) {
    KW_ASSIGN_OR_RETURN(options.frame_size, ParseSize(o.frame_size));
  }
  KW_ASSIGN_OR_RETURN(auto keys, LoadRawKeys(o.raw_keys));
  if (!o.output.empty() && o.output != "-") {
    KW_ASSIGN_OR_RETURN(std::string out_dir, CanonicalDirectoryOf(o.output));
    for (const std::string& key_path : o.raw_keys) {
      KW_ASSIGN_OR_RETURN(std::string key_dir, CanonicalDirectoryOf(key_path));
      if (key_dir == out_dir) {
        return UsageError(absl::StrCat(
            "refusing to write ciphertext into ", out_dir,
            ", the directory that holds the raw key ", key_path,
            ": keys never sit beside the data they protect; choose another "
            "-o directory"));
      }
    }
  }
  if ((o.output.empty() || o.output == "-") && ::isatty(1)) {
    return UsageError(
        "refusing to write a binary message to the terminal; use -o FILE or "
        "redirect stdout");
  }
  KW_ASSIGN_OR_RETURN(auto input, Input::Open(o.input));
  std::shared_ptr<Encryptor> encryptor;
  if (!o.key.empty()) {
    KW_ASSIGN_OR_RETURN(std::shared_ptr<DataClient> client, globals.SharedData());
    EncryptorOptions eo;
    eo.key_name = o.key;
    eo.format = options;
    eo.cache = false;
    for (const auto& k : keys) eo.additional_keyrings.push_back(k);
    KW_ASSIGN_OR_RETURN(encryptor, Encryptor::Create(std::move(client), std::move(eo)));
  }
  KW_ASSIGN_OR_RETURN(auto output, AtomicOutput::Create(o.output, 0644, input.get()));
  ProgressInput progress(input->stream(), "encrypting", input->size());
  if (encryptor) {
    KW_RETURN_IF_ERROR(encryptor->EncryptStream(progress, output->stream(), context));
  } else {
    KW_RETURN_IF_ERROR(EncryptStream(progress, output->stream(), context,
                                     As<KeyWrapper>(keys), options));
  }
  return output->Commit();
}

absl::Status RunDecrypt(const CryptOptions& o, Globals& globals) {
  if (o.raw_keys.empty() && !globals.HasConfig()) {
    return UsageError(
        "decrypt needs a client config for the KMS (--config FILE or "
        "KEYWARD_CONFIG) or --raw-key FILE (offline)");
  }
  DecryptOptions options;
  KW_ASSIGN_OR_RETURN(options.expected_context, ParseContext(o.context));
  options.require_signed = o.require_signed;
  KW_ASSIGN_OR_RETURN(auto keys, LoadRawKeys(o.raw_keys));
  // Any key the caller may read (a discovery reader), and the raw keys.
  std::vector<const KeyUnwrapper*> keyrings = As<KeyUnwrapper>(keys);
  std::unique_ptr<KmsKeyring> kms;
  if (globals.HasConfig()) {
    KW_ASSIGN_OR_RETURN(std::shared_ptr<DataClient> client, globals.SharedData());
    kms = std::make_unique<KmsKeyring>(client, "");
    keyrings.insert(keyrings.begin(), kms.get());
    options.expected_environment = client->options().environment;
  }
  KW_ASSIGN_OR_RETURN(auto input, Input::Open(o.input));
  KW_ASSIGN_OR_RETURN(auto output, AtomicOutput::Create(o.output, 0600, input.get()));
  ProgressInput progress(input->stream(), "decrypting", input->size());
  if (output->is_stdout() && !o.stream) {
    BufferedSecretSink held;
    KW_RETURN_IF_ERROR(DecryptStream(progress, held, keyrings, options));
    return held.Flush(output->stream());
  }
  KW_RETURN_IF_ERROR(DecryptStream(progress, output->stream(), keyrings, options));
  return output->Commit();
}

absl::Status RunRawKeyGenerate(const std::string& path, bool json) {
  KW_ASSIGN_OR_RETURN(auto key, RawAesKeyring::Generate());
  KW_RETURN_IF_ERROR(key->WriteKeyFile(path));
  if (json) {
    std::printf("%s\n", nlohmann::json{{"path", path}, {"key_id", key->key_id()}}
                            .dump()
                            .c_str());
  } else {
    std::fprintf(stderr,
                 "wrote raw key %s to %s (mode 0600)\n"
                 "keep it away from the data it protects, and back it up: "
                 "without it nothing it encrypted can be decrypted\n",
                 key->key_id().c_str(), path.c_str());
  }
  return absl::OkStatus();
}

absl::Status RunInspect(const std::string& path, bool json) {
  KW_ASSIGN_OR_RETURN(auto input, Input::Open(path));
  ProgressInput progress(input->stream(), "inspecting", input->size());
  KW_ASSIGN_OR_RETURN(MessageInfo info, InspectStream(progress));
  const std::string id = absl::BytesToHexString(info.message_id);
  if (json) {
    nlohmann::ordered_json keys = nlohmann::ordered_json::array();
    for (const EncryptedDataKey& k : info.data_keys) {
      keys.push_back({{"provider_id", k.provider_id},
                      {"provider_info", k.provider_info},
                      {"wrapped_bytes", k.ciphertext.size()}});
    }
    nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
    for (const auto& [k, v] : info.context) ctx[k] = v;
    nlohmann::ordered_json j = {
        {"format_version", info.format_version},
        {"suite", std::string(SuiteName(info.suite))},
        {"suite_id", static_cast<int>(info.suite)},
        {"message_id", id},
        {"environment", info.key.environment},
        {"key_name", info.key.key_name},
        {"key_version", info.key.key_version},
        {"context", ctx},
        {"data_keys", keys},
        {"frame_size", info.frame_size},
        {"frames", info.frames},
        {"header_bytes", info.header_bytes},
        {"plaintext_bytes", info.plaintext_bytes},
        {"total_bytes", info.total_bytes}};
    std::printf("%s\n", j.dump().c_str());
    return absl::OkStatus();
  }
  std::printf("format       Keyward message v%d\n", info.format_version);
  std::printf("suite        %s (0x%04x)\n",
              std::string(SuiteName(info.suite)).c_str(),
              static_cast<unsigned>(info.suite));
  std::printf("message id   %s\n", id.c_str());
  std::printf("environment  %s\n", info.key.environment.c_str());
  std::printf("key          %s version %u\n", info.key.key_name.c_str(),
              info.key.key_version);
  if (info.context.empty()) {
    std::printf("context      (empty)\n");
  }
  bool first = true;
  for (const auto& [k, v] : info.context) {
    std::printf("%s%s=%s\n", first ? "context      " : "             ",
                k.c_str(), v.c_str());
    first = false;
  }
  first = true;
  for (const EncryptedDataKey& k : info.data_keys) {
    std::printf("%s%s %s (%zu bytes)\n",
                first ? "data keys    " : "             ",
                k.provider_id.c_str(), k.provider_info.c_str(),
                k.ciphertext.size());
    first = false;
  }
  std::printf("frame size   %u\n", info.frame_size);
  std::printf("frames       %llu\n",
              static_cast<unsigned long long>(info.frames));
  std::printf("header       %llu bytes\n",
              static_cast<unsigned long long>(info.header_bytes));
  std::printf("plaintext    %llu bytes\n",
              static_cast<unsigned long long>(info.plaintext_bytes));
  std::printf("total        %llu bytes\n",
              static_cast<unsigned long long>(info.total_bytes));
  return absl::OkStatus();
}

}  // namespace

void RegisterOfflineCommands(CLI::App& app, Globals& globals, Action& action) {
  auto* raw_key = app.add_subcommand(
      "raw-key", "Manage local raw keys (tests and offline use only)");
  raw_key->require_subcommand(1);
  auto* generate = raw_key->add_subcommand(
      "generate",
      "Generate a 256-bit raw key into a new file (mode 0600).\n"
      "A raw key file is for tests and offline use: whoever reads it can\n"
      "decrypt everything it protects. In production, use a KMS key.");
  static std::string generate_path;
  generate->add_option("FILE", generate_path, "new key file (never overwritten)")
      ->required();
  generate->callback([&globals, &action] {
    action = [&globals] { return RunRawKeyGenerate(generate_path, globals.json); };
  });

  static CryptOptions crypt;
  auto add_crypt_options = [](CLI::App* cmd, bool encrypt) {
    cmd->add_option("--raw-key", crypt.raw_keys,
                    encrypt ? "raw key file (tests and offline use); repeat to "
                              "add recipients. With --key, each adds a copy "
                              "(e.g. a disaster-recovery key)"
                            : "raw key file (tests and offline use); repeat "
                              "to try several");
    cmd->add_option("--context", crypt.context,
                    encrypt ? "KEY=VALUE bound to the message (authenticated, "
                              "stored in clear); repeatable"
                            : "KEY=VALUE the message must carry; repeatable");
    cmd->add_option("-o,--output", crypt.output,
                    "output file (default or '-': stdout); written atomically");
    cmd->add_option("IN", crypt.input, "input file, or '-' for stdin")
        ->required();
  };
  auto* encrypt = app.add_subcommand(
      "encrypt",
      "Encrypt a file into a Keyward message.\n"
      "With --key NAME, keywardd (reached through --config) issues the data\n"
      "key; with --raw-key FILE it works offline (tests and offline use).");
  add_crypt_options(encrypt, true);
  encrypt->add_option("--key", crypt.key, "KMS key name, e.g. payments/cards");
  encrypt->add_option("--suite", crypt.suite,
                      "aes-256-gcm (default), chacha20-poly1305, or aes-256-gcm-ecdsa-p384\n"
                      "(signed: whoever can decrypt cannot forge it)");
  encrypt->add_option("--frame-size", crypt.frame_size,
                      "plaintext bytes per frame (default 64K; 64 to 16M)");
  encrypt->callback([&globals, &action] {
    action = [&globals] { return RunEncrypt(crypt, globals); };
  });

  auto* decrypt = app.add_subcommand(
      "decrypt",
      "Decrypt a Keyward message, through keywardd (--config) and/or raw\n"
      "key files.\n"
      "Nothing is written unless the whole message verifies: files are\n"
      "renamed into place only at the end, and plaintext for stdout is held\n"
      "back (up to 64 MiB) until then.");
  add_crypt_options(decrypt, false);
  decrypt->add_flag("--stream", crypt.stream,
                    "to stdout, release each frame as soon as it verifies "
                    "(for large messages; a later failure then leaves a "
                    "verified but incomplete prefix and exits non-zero)");
  decrypt->add_flag("--require-signed", crypt.require_signed,
                    "refuse messages that are not signed (suite aes-256-gcm-ecdsa-p384): "
                    "exit 3");
  decrypt->callback([&globals, &action] {
    action = [&globals] { return RunDecrypt(crypt, globals); };
  });

  static std::string inspect_path;
  auto* inspect = app.add_subcommand(
      "inspect",
      "Show a message's suite, key, environment, context and sizes without "
      "decrypting it");
  inspect->add_option("IN", inspect_path, "message file, or '-' for stdin")
      ->required();
  inspect->add_flag("--json", globals.json, "print one JSON object");
  inspect->callback([&globals, &action] {
    action = [&globals] { return RunInspect(inspect_path, globals.json); };
  });
}

}  // namespace keyward::cli

// The C API (include/keyward/keyward.h) over the C++ SDK.  Nothing here
// may throw across the boundary: every entry point catches.
#include "keyward/keyward.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "keyward/data_client.h"
#include "keyward/encryptor.h"
#include "keyward/errors.h"
#include "keyward/version.h"

struct kw_error {
  kw_code code;
  std::string name;
  std::string message;
};

struct kw_client {
  std::shared_ptr<keyward::DataClient> client;
};

struct kw_encryptor {
  std::shared_ptr<keyward::Encryptor> encryptor;
};

struct kw_decrypted {
  keyward::Decrypted value;
  std::vector<std::pair<std::string, std::string>> pairs;
};

namespace {

// Errors are allocated with nothrow: out of memory, the caller still gets
// the code (and a NULL error) rather than an exception across the C ABI.
kw_code Fail(const absl::Status& s, kw_error** error) {
  const auto code = static_cast<kw_code>(s.code());
  if (error != nullptr) {
    try {
      *error = new kw_error{code, std::string(keyward::ErrorCodeName(keyward::GetErrorCode(s))),
                            std::string(s.message())};
    } catch (...) {
      *error = nullptr;
    }
  }
  return code;
}

kw_code Fail(kw_code code, const char* message, kw_error** error) {
  if (error != nullptr) {
    try {
      *error = new kw_error{code, "", message};
    } catch (...) {
      *error = nullptr;
    }
  }
  return code;
}

kw_code Ok(kw_error** error) {
  if (error != nullptr) *error = nullptr;
  return KW_OK;
}

bool ReadContext(const char* const* keys, const char* const* values, size_t count,
                 keyward::EncryptionContext* out) {
  if (count > 0 && (keys == nullptr || values == nullptr)) return false;
  for (size_t i = 0; i < count; ++i) {
    if (keys[i] == nullptr || values[i] == nullptr) return false;
    // A key given twice is a caller's mistake, not "the last one wins".
    if (!out->emplace(keys[i], values[i]).second) return false;
  }
  return true;
}

template <typename F>
kw_code Guard(kw_error** error, F f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Fail(KW_INTERNAL, e.what(), error);
  } catch (...) {
    return Fail(KW_INTERNAL, "unexpected error in libkeyward", error);
  }
}

}  // namespace

extern "C" {

const char* kw_version(void) { return keyward::kVersion; }

kw_code kw_error_code(const kw_error* error) { return error == nullptr ? KW_OK : error->code; }
const char* kw_error_name(const kw_error* error) {
  return error == nullptr || error->name == "none" ? "" : error->name.c_str();
}
const char* kw_error_message(const kw_error* error) {
  return error == nullptr ? "" : error->message.c_str();
}
void kw_error_free(kw_error* error) { delete error; }

kw_code kw_client_connect(const char* config_path, kw_client** client, kw_error** error) {
  return Guard(error, [&]() -> kw_code {
    if (config_path == nullptr || client == nullptr) {
      return Fail(KW_INVALID_ARGUMENT, "kw_client_connect: NULL argument", error);
    }
    auto options = keyward::LoadClientConfig(config_path);
    if (!options.ok()) return Fail(options.status(), error);
    auto connected = keyward::DataClient::Connect(*options);
    if (!connected.ok()) return Fail(connected.status(), error);
    *client = new kw_client{std::move(*connected)};
    return Ok(error);
  });
}

void kw_client_free(kw_client* client) { delete client; }

kw_code kw_encryptor_new(kw_client* client, const char* key_name, kw_encryptor** encryptor,
                         kw_error** error) {
  return Guard(error, [&]() -> kw_code {
    if (client == nullptr || key_name == nullptr || encryptor == nullptr) {
      return Fail(KW_INVALID_ARGUMENT, "kw_encryptor_new: NULL argument", error);
    }
    auto created = keyward::Encryptor::Create(client->client, {.key_name = key_name});
    if (!created.ok()) return Fail(created.status(), error);
    *encryptor = new kw_encryptor{std::move(*created)};
    return Ok(error);
  });
}

void kw_encryptor_free(kw_encryptor* encryptor) { delete encryptor; }

kw_code kw_encrypt(kw_encryptor* encryptor, const uint8_t* plaintext, size_t plaintext_len,
                   const char* const* keys, const char* const* values, size_t count,
                   uint8_t** message, size_t* message_len, kw_error** error) {
  return Guard(error, [&]() -> kw_code {
    if (encryptor == nullptr || message == nullptr || message_len == nullptr ||
        (plaintext == nullptr && plaintext_len > 0)) {
      return Fail(KW_INVALID_ARGUMENT, "kw_encrypt: NULL argument", error);
    }
    keyward::EncryptionContext context;
    if (!ReadContext(keys, values, count, &context)) {
      return Fail(KW_INVALID_ARGUMENT,
                  "kw_encrypt: a context key or value is NULL, or a key is repeated", error);
    }
    auto m = encryptor->encryptor->Encrypt(
        absl::string_view(reinterpret_cast<const char*>(plaintext), plaintext_len), context);
    if (!m.ok()) return Fail(m.status(), error);
    *message = static_cast<uint8_t*>(std::malloc(m->size() == 0 ? 1 : m->size()));
    if (*message == nullptr) return Fail(KW_RESOURCE_EXHAUSTED, "out of memory", error);
    std::memcpy(*message, m->data(), m->size());
    *message_len = m->size();
    return Ok(error);
  });
}

kw_code kw_decrypt(kw_encryptor* encryptor, const uint8_t* message, size_t message_len,
                   const char* const* keys, const char* const* values, size_t count,
                   kw_context_match match, kw_decrypted** decrypted, kw_error** error) {
  return Guard(error, [&]() -> kw_code {
    if (encryptor == nullptr || decrypted == nullptr ||
        (message == nullptr && message_len > 0)) {
      return Fail(KW_INVALID_ARGUMENT, "kw_decrypt: NULL argument", error);
    }
    const absl::string_view bytes(reinterpret_cast<const char*>(message), message_len);
    absl::StatusOr<keyward::Decrypted> d;
    if (match == KW_CONTEXT_ANY) {
      if (count > 0) {
        return Fail(KW_INVALID_ARGUMENT,
                    "kw_decrypt: context pairs were given with KW_CONTEXT_ANY, which would "
                    "ignore them; pass KW_CONTEXT_EXACT or KW_CONTEXT_AT_LEAST",
                    error);
      }
      d = encryptor->encryptor->Decrypt(bytes);
    } else if (match == KW_CONTEXT_EXACT || match == KW_CONTEXT_AT_LEAST) {
      keyward::EncryptionContext expected;
      if (!ReadContext(keys, values, count, &expected)) {
        return Fail(KW_INVALID_ARGUMENT,
                    "kw_decrypt: a context key or value is NULL, or a key is repeated", error);
      }
      d = encryptor->encryptor->Decrypt(bytes, expected,
                                        match == KW_CONTEXT_EXACT
                                            ? keyward::ContextMatch::kExact
                                            : keyward::ContextMatch::kAtLeast);
    } else {
      return Fail(KW_INVALID_ARGUMENT, "kw_decrypt: unknown kw_context_match", error);
    }
    if (!d.ok()) return Fail(d.status(), error);
    auto* out = new kw_decrypted{std::move(*d), {}};
    for (const auto& [k, v] : out->value.context) out->pairs.emplace_back(k, v);
    *decrypted = out;
    return Ok(error);
  });
}

const uint8_t* kw_decrypted_plaintext(const kw_decrypted* decrypted, size_t* len) {
  if (len != nullptr) *len = decrypted == nullptr ? 0 : decrypted->value.plaintext.size();
  return decrypted == nullptr
             ? nullptr
             : reinterpret_cast<const uint8_t*>(decrypted->value.plaintext.data());
}
size_t kw_decrypted_context_count(const kw_decrypted* decrypted) {
  return decrypted == nullptr ? 0 : decrypted->pairs.size();
}
const char* kw_decrypted_context_key(const kw_decrypted* decrypted, size_t i) {
  return decrypted != nullptr && i < decrypted->pairs.size() ? decrypted->pairs[i].first.c_str()
                                                             : nullptr;
}
const char* kw_decrypted_context_value(const kw_decrypted* decrypted, size_t i) {
  return decrypted != nullptr && i < decrypted->pairs.size()
             ? decrypted->pairs[i].second.c_str()
             : nullptr;
}
const char* kw_decrypted_key_name(const kw_decrypted* decrypted) {
  return decrypted == nullptr ? "" : decrypted->value.key.key_name.c_str();
}
uint32_t kw_decrypted_key_version(const kw_decrypted* decrypted) {
  return decrypted == nullptr ? 0 : decrypted->value.key.key_version;
}
void kw_decrypted_free(kw_decrypted* decrypted) { delete decrypted; }  // SecretData wipes

void kw_bytes_free(uint8_t* bytes, size_t len) {
  if (bytes == nullptr) return;
  OPENSSL_cleanse(bytes, len);
  std::free(bytes);
}

}  // extern "C"

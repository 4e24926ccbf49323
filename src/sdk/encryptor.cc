#include "keyward/encryptor.h"

#include <atomic>
#include <mutex>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "crypto/signature.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "format/kms_entries.h"
#include "format/message_keys.h"
#include "format/single_flight_cache.h"
#include "keyward/caching_unwrapper.h"
#include "keyward/errors.h"
#include "keyward/kms_keyring.h"

namespace keyward {
namespace {

// A cached data key and what it has protected so far.
struct Entry {
  SecretData data_key;
  // What every message's key schedule needs from data_key, made once.
  std::unique_ptr<format::DataKeySchedule> schedule;
  // The header every message under this entry shares (unsigned suites).
  std::optional<format::HeaderTemplate> header;
  std::vector<EncryptedDataKey> data_keys;
  KeyReference key;
  absl::Time created;
  // Charged under the slot's lock; stream bytes are added afterwards.
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes{0};
};

// Counts unwraps when the decrypt cache is off (each one is a call to
// keywardd), so Stats() means the same either way.
class CountingUnwrapper final : public KeyUnwrapper {
 public:
  explicit CountingUnwrapper(std::shared_ptr<const KeyUnwrapper> inner)
      : inner_(std::move(inner)) {}
  absl::StatusOr<SecretData> UnwrapDataKey(const EncryptedDataKey& edk,
                                           const EncryptionContext& context) const override {
    if (!inner_->Owns(edk)) return absl::NotFoundError("not an entry of this unwrapper");
    ++calls_;
    return inner_->UnwrapDataKey(edk, context);
  }
  bool Owns(const EncryptedDataKey& edk) const override { return inner_->Owns(edk); }
  uint64_t calls() const { return calls_; }

 private:
  const std::shared_ptr<const KeyUnwrapper> inner_;
  mutable std::atomic<uint64_t> calls_{0};
};

// Reads the message header at the front of a stream, then gives back the
// header's bytes followed by the rest of the stream.
class ReplayInput final : public InputStream {
 public:
  ReplayInput(std::string prefix, InputStream& rest) : prefix_(std::move(prefix)), rest_(rest) {}
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buf) override {
    if (pos_ < prefix_.size()) {
      const size_t n = std::min(buf.size(), prefix_.size() - pos_);
      std::copy_n(prefix_.data() + pos_, n, buf.data());
      pos_ += n;
      return n;
    }
    return rest_.Read(buf);
  }

 private:
  const std::string prefix_;
  size_t pos_ = 0;
  InputStream& rest_;
};

// Counts what passes through, for the byte limits of streams.
class CountingInput final : public InputStream {
 public:
  explicit CountingInput(InputStream& in) : in_(in) {}
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buf) override {
    auto n = in_.Read(buf);
    if (n.ok()) count_ += *n;
    return n;
  }
  uint64_t count() const { return count_; }

 private:
  InputStream& in_;
  uint64_t count_ = 0;
};

// Times an operation for the observer.
class Timed {
 public:
  Timed(Observer* o, Observer::Operation op) : o_(o), op_(op), start_(absl::Now()) {}
  void Done(bool ok) {
    if (o_ != nullptr) o_->OnOperation(op_, absl::Now() - start_, ok);
  }

 private:
  Observer* o_;
  Observer::Operation op_;
  absl::Time start_;
};


// The message's context without the pair the library adds to signed
// messages: what the writer chose, and what an expected context matches.
EncryptionContext CallerPairs(const EncryptionContext& context) {
  EncryptionContext out = context;
  out.erase(kSigningKeyContextKey);
  return out;
}

absl::Status CheckExactContext(const EncryptionContext& actual,
                               const EncryptionContext& expected) {
  std::vector<std::string> extra;
  for (const auto& [k, v] : CallerPairs(actual)) {
    if (expected.count(k) == 0) extra.push_back(k);
  }
  if (extra.empty()) return absl::OkStatus();
  return MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kContextMismatch,
                   absl::StrCat("the message's encryption context has pairs the caller did "
                                "not expect (",
                                absl::StrJoin(extra, ", "),
                                "); pass ContextMatch::kAtLeast to accept extra pairs"));
}

// What both readers share: checks before any key is used, then the format.
struct Reader {
  std::shared_ptr<DataClient> client;
  std::string bound_key;  // empty: any key (DiscoveryDecryptor)
  std::vector<std::shared_ptr<const KeyUnwrapper>> unwrappers;  // [0] is the KMS
  std::shared_ptr<CachingUnwrapper> cached;      // when caching
  std::shared_ptr<CountingUnwrapper> uncached;   // when not
  std::shared_ptr<Observer> observer;
  // An Encryptor of a signed suite reads only signed messages: an unsigned
  // one could come from any reader of the key.
  bool require_signed = false;

  void Init(std::shared_ptr<DataClient> c, std::string key, bool cache,
            const CacheLimits& limits, std::shared_ptr<Observer> o) {
    client = std::move(c);
    bound_key = std::move(key);
    observer = std::move(o);
    auto kms = std::make_shared<KmsKeyring>(client, bound_key);
    if (cache) {
      Observer* obs = observer.get();
      cached = std::make_shared<CachingUnwrapper>(kms, limits, [obs](bool hit) {
        if (obs != nullptr) obs->OnCache(Observer::Operation::kDecrypt, hit);
      });
      unwrappers.push_back(cached);
    } else {
      uncached = std::make_shared<CountingUnwrapper>(kms);
      unwrappers.push_back(uncached);
    }
  }

  std::vector<const KeyUnwrapper*> Unwrappers() const {
    std::vector<const KeyUnwrapper*> out;
    for (const auto& u : unwrappers) out.push_back(u.get());
    return out;
  }

  // The header's key, every kms entry's label and every kms blob's own key
  // name (which keywardd unwraps with) must all be the bound key: a header
  // relabelled to this key around another key's data key is refused before
  // anything is unwrapped.  A DiscoveryDecryptor checks that they agree.
  absl::Status CheckKey(const format::Header& h) const {
    if (!bound_key.empty() && h.key.key_name != bound_key) {
      return MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kKeyMismatch,
                       absl::StrCat("the message is under key '", h.key.key_name,
                                    "' but this Encryptor reads only key '", bound_key,
                                    "' (use an Encryptor for that key, or a DiscoveryDecryptor "
                                    "to read any key you are allowed to)"));
    }
    return format::CheckKmsEntriesBoundTo(h, h.key.key_name);
  }

  absl::StatusOr<DecryptOptions> Check(const format::Header& h,
                                       const std::optional<EncryptionContext>& expected,
                                       ContextMatch match) const {
    KW_RETURN_IF_ERROR(CheckKey(h));
    DecryptOptions o;
    o.expected_environment = client->options().environment;
    o.require_signed = require_signed;
    if (expected) {
      o.expected_context = *expected;  // every expected pair, checked by the format
      if (match == ContextMatch::kExact) KW_RETURN_IF_ERROR(CheckExactContext(h.context, *expected));
    }
    return o;
  }

  absl::StatusOr<Decrypted> Decrypt(absl::string_view message,
                                    const std::optional<EncryptionContext>& expected,
                                    ContextMatch match) const {
    Timed timer(observer.get(), Observer::Operation::kDecrypt);
    auto result = [&]() -> absl::StatusOr<Decrypted> {
      std::string authenticated;
      KW_ASSIGN_OR_RETURN(format::Header h, format::ParseHeader(message, &authenticated));
      KW_ASSIGN_OR_RETURN(DecryptOptions o, Check(h, expected, match));
      KW_ASSIGN_OR_RETURN(SecretData plaintext, DecryptMessage(message, Unwrappers(), o));
      return Decrypted{std::move(plaintext), std::move(h.context), std::move(h.key)};
    }();
    timer.Done(result.ok());
    return result;
  }

  absl::StatusOr<Decrypted> DecryptStream(InputStream& in, OutputStream& out,
                                          const std::optional<EncryptionContext>& expected,
                                          ContextMatch match) const {
    Timed timer(observer.get(), Observer::Operation::kDecrypt);
    auto result = [&]() -> absl::StatusOr<Decrypted> {
      std::string authenticated;
      KW_ASSIGN_OR_RETURN(format::Header h, format::ReadHeader(in, &authenticated));
      KW_ASSIGN_OR_RETURN(DecryptOptions o, Check(h, expected, match));
      ReplayInput replay(authenticated + h.tag, in);
      KW_RETURN_IF_ERROR(keyward::DecryptStream(replay, out, Unwrappers(), o));
      return Decrypted{SecretData(), std::move(h.context), std::move(h.key)};
    }();
    timer.Done(result.ok());
    return result;
  }

  absl::Status RewrapStream(InputStream& in, OutputStream& out) const {
    Timed timer(observer.get(), Observer::Operation::kRewrap);
    absl::Status s = [&]() -> absl::Status {
      std::string authenticated;
      KW_ASSIGN_OR_RETURN(format::Header h, format::ReadHeader(in, &authenticated));
      KW_RETURN_IF_ERROR(CheckKey(h));
      const std::string& environment = client->options().environment;
      if (!h.key.environment.empty() && h.key.environment != environment) {
        return MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kEnvironmentMismatch,
                         absl::StrCat("the message belongs to environment '", h.key.environment,
                                      "' but this client serves '", environment, "'"));
      }
      KW_ASSIGN_OR_RETURN(RewrappedHeader rewrapped,
                          client->RewrapMessageHeader(authenticated + h.tag, {}));
      KW_RETURN_IF_ERROR(out.Write(rewrapped.header));
      std::string chunk(64 << 10, '\0');
      for (;;) {
        KW_ASSIGN_OR_RETURN(size_t n, in.Read({reinterpret_cast<uint8_t*>(chunk.data()),
                                               chunk.size()}));
        if (n == 0) return absl::OkStatus();
        KW_RETURN_IF_ERROR(out.Write(absl::string_view(chunk.data(), n)));
      }
    }();
    timer.Done(s.ok());
    return s;
  }

  absl::StatusOr<std::string> Rewrap(absl::string_view message) const {
    StringInputStream in(message);
    std::string out;
    out.reserve(message.size() + 256);
    StringOutputStream sink(&out);
    KW_RETURN_IF_ERROR(RewrapStream(in, sink));
    return out;
  }

  void Stats(EncryptorStats* s) const {
    if (cached) {
      s->decrypt_cache_hits = cached->hits();
      s->decrypt_cache_misses = cached->misses();
    } else if (uncached) {
      s->decrypt_cache_misses = uncached->calls();
    }
  }
  void Clear() {
    if (cached) cached->Clear();
  }
};

absl::Status ValidateSuite(const EncryptOptions& format) {
  switch (format.suite) {
    case Suite::kAes256GcmHkdfSha256Commit:
    case Suite::kChaCha20Poly1305HkdfSha256Commit:
    case Suite::kAes256GcmHkdfSha256CommitEcdsaP384:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "EncryptorOptions.format.suite: unknown suite 0x", absl::Hex(static_cast<int>(format.suite))));
  }
  if (format.frame_size < FormatLimits::kMinFrameSize ||
      format.frame_size > FormatLimits::kMaxFrameSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "EncryptorOptions.format.frame_size: ", format.frame_size, " is outside ",
        FormatLimits::kMinFrameSize, "..", FormatLimits::kMaxFrameSize));
  }
  return absl::OkStatus();
}

}  // namespace

struct Encryptor::State {
  explicit State(EncryptorOptions o) : options(std::move(o)), encrypt_cache(options.encrypt_cache) {}

  // A signed message's own key pair and context (its public key added);
  // for other suites, the caller's context as is.
  absl::StatusOr<EncryptionContext> MessageContext(
      const EncryptionContext& context, std::unique_ptr<crypto::EcdsaP384Signer>* signer) {
    if (context.count(kSigningKeyContextKey) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the encryption context key '", kSigningKeyContextKey,
          "' is reserved: Keyward adds it to signed messages itself"));
    }
    if (!IsSignedSuite(options.format.suite)) return context;
    KW_ASSIGN_OR_RETURN(*signer, crypto::EcdsaP384Signer::Generate());
    EncryptionContext out = context;
    out[kSigningKeyContextKey] = absl::Base64Escape((*signer)->public_key());
    return out;
  }

  absl::StatusOr<std::shared_ptr<Entry>> Materials(const EncryptionContext& context,
                                                   uint64_t size) {
    KW_RETURN_IF_ERROR(format::ValidateContext(context));
    auto fetch = [&]() -> absl::StatusOr<std::shared_ptr<Entry>> {
      KW_ASSIGN_OR_RETURN(GeneratedDataKey g,
                          reader.client->GenerateDataKey(options.key_name, context));
      auto e = std::make_shared<Entry>();
      e->key = g.key;
      e->data_keys.push_back(std::move(g.encrypted));
      for (const auto& k : options.additional_keyrings) {
        KW_ASSIGN_OR_RETURN(WrappedDataKey w, k->WrapDataKey(g.plaintext, context));
        e->data_keys.push_back(std::move(w.encrypted));
      }
      e->data_key = std::move(g.plaintext);
      KW_ASSIGN_OR_RETURN(e->schedule, format::DataKeySchedule::New(e->data_key));
      if (!IsSignedSuite(options.format.suite)) {
        KW_ASSIGN_OR_RETURN(e->header, format::MakeHeaderTemplate(ToMaterials(*e, context)));
      }
      return e;
    };
    bool hit = false;
    absl::StatusOr<std::shared_ptr<Entry>> entry;
    // A signed message's context is its own (its public key): its data key
    // serves it alone, so it is never cached.
    if (options.cache && !IsSignedSuite(options.format.suite)) {
      entry = encrypt_cache.Acquire(format::SerializeContext(context), size, fetch, &hit);
    } else {
      entry = fetch();
    }
    if (entry.ok()) {
      ++*(hit ? &encrypt_hits : &encrypt_misses);
      if (options.observer != nullptr) {
        options.observer->OnCache(Observer::Operation::kEncrypt, hit);
      }
    }
    return entry;
  }

  format::EncryptionMaterials ToMaterials(const Entry& e, const EncryptionContext& context) {
    format::EncryptionMaterials m;
    m.suite = options.format.suite;
    m.frame_size = options.format.frame_size;
    m.key = e.key;
    m.context = context;
    m.data_keys = e.data_keys;
    m.data_key = &e.data_key;
    m.schedule = e.schedule.get();
    m.header = e.header ? &*e.header : nullptr;
    return m;
  }

  const EncryptorOptions options;
  format::SingleFlightCache<Entry> encrypt_cache;
  std::atomic<uint64_t> encrypt_hits{0}, encrypt_misses{0};
  Reader reader;
};

absl::StatusOr<std::shared_ptr<Encryptor>> Encryptor::Create(std::shared_ptr<DataClient> client,
                                                             EncryptorOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("Encryptor::Create: no DataClient");
  if (options.key_name.empty()) {
    return absl::InvalidArgumentError(
        "EncryptorOptions.key_name is required: an Encryptor encrypts and decrypts under one key");
  }
  if (absl::Status s = format::ValidateKeyName(options.key_name); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("EncryptorOptions.key_name: ", s.message()));
  }
  KW_RETURN_IF_ERROR(ValidateSuite(options.format));
  if (options.cache) {
    KW_RETURN_IF_ERROR(ValidateCacheLimits(options.encrypt_cache, "EncryptorOptions.encrypt_cache"));
    KW_RETURN_IF_ERROR(ValidateCacheLimits(options.decrypt_cache, "EncryptorOptions.decrypt_cache"));
  }
  for (const auto& k : options.additional_keyrings) {
    if (k == nullptr) {
      return absl::InvalidArgumentError("EncryptorOptions.additional_keyrings holds a null keyring");
    }
  }
  auto state = std::make_unique<State>(options);
  state->reader.Init(std::move(client), options.key_name, options.cache, options.decrypt_cache,
                     options.observer);
  state->reader.require_signed = IsSignedSuite(options.format.suite);
  // Extra keyrings only add recipients: opening a message through one (a
  // shared disaster-recovery key) would not prove which key it was made
  // under.  Recovery reads through a DiscoveryDecryptor.
  return std::shared_ptr<Encryptor>(new Encryptor(std::move(state)));
}

Encryptor::Encryptor(std::unique_ptr<State> state) : state_(std::move(state)) {}
Encryptor::~Encryptor() = default;

const std::string& Encryptor::key_name() const { return state_->options.key_name; }

absl::StatusOr<std::string> Encryptor::Encrypt(absl::string_view plaintext,
                                               const EncryptionContext& context) {
  Timed timer(state_->options.observer.get(), Observer::Operation::kEncrypt);
  auto result = [&]() -> absl::StatusOr<std::string> {
    std::unique_ptr<crypto::EcdsaP384Signer> signer;
    KW_ASSIGN_OR_RETURN(EncryptionContext full, state_->MessageContext(context, &signer));
    KW_ASSIGN_OR_RETURN(std::shared_ptr<Entry> e, state_->Materials(full, plaintext.size()));
    format::EncryptionMaterials m = state_->ToMaterials(*e, full);
    m.signer = signer.get();
    return format::EncryptBytesWithMaterials(m, plaintext);
  }();
  timer.Done(result.ok());
  return result;
}

absl::Status Encryptor::EncryptStream(InputStream& in, OutputStream& out,
                                      const EncryptionContext& context) {
  Timed timer(state_->options.observer.get(), Observer::Operation::kEncrypt);
  absl::Status s = [&]() -> absl::Status {
    std::unique_ptr<crypto::EcdsaP384Signer> signer;
    KW_ASSIGN_OR_RETURN(EncryptionContext full, state_->MessageContext(context, &signer));
    KW_ASSIGN_OR_RETURN(std::shared_ptr<Entry> e, state_->Materials(full, 0));
    CountingInput counting(in);
    format::EncryptionMaterials m = state_->ToMaterials(*e, full);
    m.signer = signer.get();
    absl::Status status = format::EncryptWithMaterials(m, counting, out);
    format::SingleFlightCache<Entry>::AddBytes(e, counting.count());
    return status;
  }();
  timer.Done(s.ok());
  return s;
}

absl::StatusOr<Decrypted> Encryptor::Decrypt(absl::string_view message) {
  return state_->reader.Decrypt(message, std::nullopt, ContextMatch::kExact);
}

absl::StatusOr<Decrypted> Encryptor::Decrypt(absl::string_view message,
                                             const EncryptionContext& expected,
                                             ContextMatch match) {
  return state_->reader.Decrypt(message, expected, match);
}

absl::StatusOr<Decrypted> Encryptor::DecryptStream(
    InputStream& in, OutputStream& out, const std::optional<EncryptionContext>& expected,
    ContextMatch match) {
  return state_->reader.DecryptStream(in, out, expected, match);
}

absl::StatusOr<std::string> Encryptor::Rewrap(absl::string_view message) {
  return state_->reader.Rewrap(message);
}

absl::Status Encryptor::RewrapStream(InputStream& in, OutputStream& out) {
  return state_->reader.RewrapStream(in, out);
}

EncryptorStats Encryptor::Stats() const {
  EncryptorStats s{state_->encrypt_hits.load(), state_->encrypt_misses.load(), 0, 0};
  state_->reader.Stats(&s);
  return s;
}

void Encryptor::ClearCaches() {
  state_->encrypt_cache.Clear();
  state_->reader.Clear();
}

// --- DiscoveryDecryptor -------------------------------------------------------

struct DiscoveryDecryptor::State {
  Reader reader;
};

absl::StatusOr<std::shared_ptr<DiscoveryDecryptor>> DiscoveryDecryptor::Create(
    std::shared_ptr<DataClient> client, DiscoveryDecryptorOptions options) {
  if (client == nullptr) {
    return absl::InvalidArgumentError("DiscoveryDecryptor::Create: no DataClient");
  }
  if (options.cache) {
    KW_RETURN_IF_ERROR(
        ValidateCacheLimits(options.decrypt_cache, "DiscoveryDecryptorOptions.decrypt_cache"));
  }
  auto state = std::make_unique<State>();
  state->reader.Init(std::move(client), "", options.cache, options.decrypt_cache,
                     options.observer);
  for (const auto& u : options.additional_unwrappers) {
    if (u == nullptr) {
      return absl::InvalidArgumentError(
          "DiscoveryDecryptorOptions.additional_unwrappers holds a null unwrapper");
    }
    state->reader.unwrappers.push_back(u);
  }
  return std::shared_ptr<DiscoveryDecryptor>(new DiscoveryDecryptor(std::move(state)));
}

DiscoveryDecryptor::DiscoveryDecryptor(std::unique_ptr<State> state) : state_(std::move(state)) {}
DiscoveryDecryptor::~DiscoveryDecryptor() = default;

absl::StatusOr<Decrypted> DiscoveryDecryptor::Decrypt(absl::string_view message) {
  return state_->reader.Decrypt(message, std::nullopt, ContextMatch::kExact);
}

absl::StatusOr<Decrypted> DiscoveryDecryptor::Decrypt(absl::string_view message,
                                                      const EncryptionContext& expected,
                                                      ContextMatch match) {
  return state_->reader.Decrypt(message, expected, match);
}

absl::StatusOr<Decrypted> DiscoveryDecryptor::DecryptStream(
    InputStream& in, OutputStream& out, const std::optional<EncryptionContext>& expected,
    ContextMatch match) {
  return state_->reader.DecryptStream(in, out, expected, match);
}

absl::StatusOr<std::string> DiscoveryDecryptor::Rewrap(absl::string_view message) {
  return state_->reader.Rewrap(message);
}

absl::Status DiscoveryDecryptor::RewrapStream(InputStream& in, OutputStream& out) {
  return state_->reader.RewrapStream(in, out);
}

EncryptorStats DiscoveryDecryptor::Stats() const {
  EncryptorStats s;
  state_->reader.Stats(&s);
  return s;
}

void DiscoveryDecryptor::ClearCaches() { state_->reader.Clear(); }

}  // namespace keyward

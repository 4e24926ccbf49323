#include "keyward/encryptor.h"

#include "absl/strings/escaping.h"
#include "crypto/signature.h"

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "keyward/errors.h"
#include "keyward/kms_keyring.h"

namespace keyward {
namespace {

// A cached data key and what it has protected so far.
struct Entry {
  SecretData data_key;
  std::vector<EncryptedDataKey> data_keys;
  KeyReference key;
  absl::Time created;
  // Charged under the slot's lock; stream bytes are added afterwards.
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes{0};

  bool Usable(const CacheLimits& limits, absl::Time now, uint64_t size) const {
    return now - created < limits.max_age && messages < limits.max_messages &&
           bytes + size <= limits.max_bytes;
  }
};

// One cache partition: at most one fetch in flight (single-flight).
struct Slot {
  std::mutex mu;
  std::condition_variable cv;
  bool fetching = false;
  std::shared_ptr<Entry> entry;  // GUARDED_BY(mu)
};

class Cache {
 public:
  explicit Cache(CacheLimits limits) : limits_(limits) {}

  // Returns a usable entry for `partition`, charging one message of `size`
  // bytes; calls `fetch` (once, however many callers wait) when there is
  // none.  `hit` tells whether the entry was cached.
  template <typename Fetch>
  absl::StatusOr<std::shared_ptr<Entry>> Acquire(const std::string& partition,
                                                 uint64_t size, Fetch fetch,
                                                 bool* hit) {
    std::shared_ptr<Slot> slot = GetSlot(partition);
    std::unique_lock<std::mutex> lock(slot->mu);
    *hit = true;
    for (;;) {
      const absl::Time now = absl::Now();
      if (slot->entry && slot->entry->Usable(limits_, now, size)) {
        ++slot->entry->messages;
        slot->entry->bytes += size;
        return slot->entry;
      }
      if (slot->fetching) {
        slot->cv.wait(lock);
        continue;
      }
      *hit = false;
      slot->fetching = true;
      slot->entry.reset();  // the last user wipes the old key
      lock.unlock();
      absl::StatusOr<std::shared_ptr<Entry>> fetched = fetch();
      lock.lock();
      slot->fetching = false;
      slot->cv.notify_all();
      if (!fetched.ok()) return fetched.status();
      (*fetched)->created = absl::Now();
      slot->entry = *fetched;
      // A fresh entry is charged below on the next turn of the loop.
      if (!slot->entry->Usable(limits_, absl::Now(), size)) {
        // One message larger than max_bytes: serve it anyway, once.
        ++slot->entry->messages;
        slot->entry->bytes += size;
        return slot->entry;
      }
    }
  }

  static void AddBytes(const std::shared_ptr<Entry>& entry, uint64_t bytes) {
    entry->bytes += bytes;
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    slots_.clear();
  }

 private:
  std::shared_ptr<Slot> GetSlot(const std::string& partition) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = slots_.find(partition);
    if (it != slots_.end()) return it->second;
    if (slots_.size() >= limits_.max_entries) {
      // Drop the partitions nobody is using right now; their keys are wiped
      // when the last user lets go.
      for (auto i = slots_.begin(); i != slots_.end();) {
        if (i->second.use_count() == 1) {
          slots_.erase(i++);
        } else {
          ++i;
        }
      }
    }
    auto slot = std::make_shared<Slot>();
    slots_.emplace(partition, slot);
    return slot;
  }

  const CacheLimits limits_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Slot>> slots_;
};

// Unwraps kms entries through the decrypt-side cache.
class CachedKmsKeyring final : public Keyring {
 public:
  CachedKmsKeyring(Client* client, Cache* cache, bool enabled,
                   std::atomic<uint64_t>* hits, std::atomic<uint64_t>* misses,
                   Observer* observer)
      : kms_(client, ""), cache_(cache), enabled_(enabled), hits_(hits),
        misses_(misses), observer_(observer) {}

  absl::StatusOr<GeneratedDataKey> GenerateDataKey(const EncryptionContext&) const override {
    return absl::FailedPreconditionError("decrypt-only keyring");
  }
  absl::StatusOr<WrappedDataKey> WrapDataKey(const SecretData&,
                                             const EncryptionContext&) const override {
    return absl::FailedPreconditionError("decrypt-only keyring");
  }
  absl::StatusOr<SecretData> UnwrapDataKey(const EncryptedDataKey& edk,
                                           const EncryptionContext& context) const override {
    if (!kms_.Owns(edk)) return absl::NotFoundError("not a kms entry");
    if (!enabled_) {
      ++*misses_;
      return kms_.UnwrapDataKey(edk, context);
    }
    const std::string partition =
        absl::StrCat(edk.ciphertext, "|", format::SerializeContext(context));
    bool hit = false;
    KW_ASSIGN_OR_RETURN(
        std::shared_ptr<Entry> entry,
        cache_->Acquire(partition, 0,
                        [&]() -> absl::StatusOr<std::shared_ptr<Entry>> {
                          KW_ASSIGN_OR_RETURN(SecretData dek,
                                              kms_.UnwrapDataKey(edk, context));
                          auto e = std::make_shared<Entry>();
                          e->data_key = std::move(dek);
                          return e;
                        },
                        &hit));
    ++*(hit ? hits_ : misses_);
    if (observer_ != nullptr) observer_->OnCache(Observer::Operation::kDecrypt, hit);
    return entry->data_key.Clone();
  }
  bool Owns(const EncryptedDataKey& edk) const override { return kms_.Owns(edk); }

 private:
  KmsKeyring kms_;
  Cache* cache_;
  const bool enabled_;
  std::atomic<uint64_t>* hits_;
  std::atomic<uint64_t>* misses_;
  Observer* observer_;
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

}  // namespace

struct Encryptor::State {
  State(Client* c, EncryptorOptions o)
      : client(c),
        options(std::move(o)),
        encrypt_cache(options.encrypt_cache),
        decrypt_cache(options.decrypt_cache),
        decrypt_keyring(c, &decrypt_cache, options.cache, &decrypt_hits,
                        &decrypt_misses, options.observer) {}

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
                          client->GenerateDataKey(options.key_name, context));
      auto e = std::make_shared<Entry>();
      e->key = g.key;
      e->data_keys.push_back(std::move(g.encrypted));
      for (const Keyring* k : options.additional_keyrings) {
        KW_ASSIGN_OR_RETURN(WrappedDataKey w, k->WrapDataKey(g.plaintext, context));
        e->data_keys.push_back(std::move(w.encrypted));
      }
      e->data_key = std::move(g.plaintext);
      return e;
    };
    bool hit = false;
    absl::StatusOr<std::shared_ptr<Entry>> entry;
    // A signed message's context is its own (its public key): its data key
    // serves it alone, so it is never cached.
    if (options.cache && !IsSignedSuite(options.format.suite)) {
      entry = encrypt_cache.Acquire(
          format::SerializeContext(context), size, fetch, &hit);
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

  format::EncryptionMaterials ToMaterials(const Entry& e,
                                          const EncryptionContext& context) {
    format::EncryptionMaterials m;
    m.suite = options.format.suite;
    m.frame_size = options.format.frame_size;
    m.key = e.key;
    m.context = context;
    m.data_keys = e.data_keys;
    m.data_key = &e.data_key;
    return m;
  }

  std::vector<const Keyring*> DecryptKeyrings() {
    std::vector<const Keyring*> k{&decrypt_keyring};
    k.insert(k.end(), options.additional_keyrings.begin(),
             options.additional_keyrings.end());
    return k;
  }

  DecryptOptions DecryptOpts(const EncryptionContext& expected) {
    DecryptOptions o;
    o.expected_context = expected;
    o.expected_environment = client->options().environment;
    return o;
  }

  Client* const client;
  const EncryptorOptions options;
  Cache encrypt_cache;
  Cache decrypt_cache;
  std::atomic<uint64_t> encrypt_hits{0}, encrypt_misses{0};
  std::atomic<uint64_t> decrypt_hits{0}, decrypt_misses{0};
  CachedKmsKeyring decrypt_keyring;
};

Encryptor::Encryptor(Client* client, EncryptorOptions options)
    : state_(std::make_unique<State>(client, std::move(options))) {}

Encryptor::~Encryptor() = default;

absl::StatusOr<std::string> Encryptor::Encrypt(absl::string_view plaintext,
                                               const EncryptionContext& context) {
  Timed timer(state_->options.observer, Observer::Operation::kEncrypt);
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

absl::StatusOr<SecretData> Encryptor::Decrypt(absl::string_view message,
                                              const EncryptionContext& expected) {
  Timed timer(state_->options.observer, Observer::Operation::kDecrypt);
  auto result = DecryptMessage(message, state_->DecryptKeyrings(),
                               state_->DecryptOpts(expected));
  timer.Done(result.ok());
  return result;
}

absl::Status Encryptor::EncryptStream(InputStream& in, OutputStream& out,
                                      const EncryptionContext& context) {
  Timed timer(state_->options.observer, Observer::Operation::kEncrypt);
  absl::Status s = [&]() -> absl::Status {
    std::unique_ptr<crypto::EcdsaP384Signer> signer;
    KW_ASSIGN_OR_RETURN(EncryptionContext full, state_->MessageContext(context, &signer));
    KW_ASSIGN_OR_RETURN(std::shared_ptr<Entry> e, state_->Materials(full, 0));
    CountingInput counting(in);
    format::EncryptionMaterials m = state_->ToMaterials(*e, full);
    m.signer = signer.get();
    absl::Status status = format::EncryptWithMaterials(m, counting, out);
    state_->encrypt_cache.AddBytes(e, counting.count());
    return status;
  }();
  timer.Done(s.ok());
  return s;
}

absl::Status Encryptor::DecryptStream(InputStream& in, OutputStream& out,
                                      const EncryptionContext& expected) {
  Timed timer(state_->options.observer, Observer::Operation::kDecrypt);
  absl::Status s = keyward::DecryptStream(in, out, state_->DecryptKeyrings(),
                                          state_->DecryptOpts(expected));
  timer.Done(s.ok());
  return s;
}

absl::Status Encryptor::RewrapStream(InputStream& in, OutputStream& out) {
  Timed timer(state_->options.observer, Observer::Operation::kRewrap);
  absl::Status s = [&]() -> absl::Status {
    std::string authenticated;
    KW_ASSIGN_OR_RETURN(format::Header h, format::ReadHeader(in, &authenticated));
    if (!h.key.environment.empty() &&
        h.key.environment != state_->client->options().environment) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       ErrorCode::kEnvironmentMismatch,
                       absl::StrCat("the message belongs to environment '",
                                    h.key.environment, "' but this client serves '",
                                    state_->client->options().environment, "'"));
    }
    KW_ASSIGN_OR_RETURN(RewrappedHeader rewrapped,
                        state_->client->RewrapMessageHeader(authenticated + h.tag, {}));
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

absl::StatusOr<std::string> Encryptor::Rewrap(absl::string_view message) {
  StringInputStream in(message);
  std::string out;
  out.reserve(message.size() + 256);
  StringOutputStream sink(&out);
  KW_RETURN_IF_ERROR(RewrapStream(in, sink));
  return out;
}

EncryptorStats Encryptor::Stats() const {
  return EncryptorStats{state_->encrypt_hits.load(), state_->encrypt_misses.load(),
                        state_->decrypt_hits.load(), state_->decrypt_misses.load()};
}

void Encryptor::ClearCaches() {
  state_->encrypt_cache.Clear();
  state_->decrypt_cache.Clear();
}

}  // namespace keyward

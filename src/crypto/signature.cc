#include "crypto/signature.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <cstring>
#include <memory>

#include "absl/strings/escaping.h"
#include "crypto/hash.h"

namespace keyward::crypto {
namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

PkeyPtr ReadPublicKey(absl::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return PkeyPtr(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)
                     : nullptr,
                 EVP_PKEY_free);
}

}  // namespace

absl::Status VerifyEcdsaP256(absl::string_view public_key_pem, absl::string_view data,
                             absl::string_view signature) {
  PkeyPtr key = ReadPublicKey(public_key_pem);
  if (key == nullptr || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not an EC public key in PEM");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              EVP_MD_CTX_free);
  const bool ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(),
                       reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) == 1;
  ERR_clear_error();
  if (!ok) return absl::DataLossError("signature does not verify");
  return absl::OkStatus();
}

absl::StatusOr<std::string> EcdsaRawToDer(absl::string_view raw) {
  if (raw.size() != 64) return absl::InvalidArgumentError("raw ECDSA P-256 signature is 64 bytes");
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(p, 32, nullptr);
  BIGNUM* s = BN_bin2bn(p + 32, 32, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    ECDSA_SIG_free(sig);
    BN_free(r);
    BN_free(s);
    return absl::InternalError("cannot encode the signature");
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return absl::InternalError("cannot encode the signature");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::string> P256PublicKeyPemFromPoint(absl::string_view point) {
  char group[] = "P-256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                        const_cast<char*>(point.data()), point.size()),
      OSSL_PARAM_construct_end()};
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a P-256 public point");
  }
  PkeyPtr owned(key, EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<std::string> PublicKeyFingerprint(absl::string_view public_key_pem) {
  PkeyPtr key = ReadPublicKey(public_key_pem);
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a public key in PEM");
  }
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key.get(), &der);
  if (len <= 0) return absl::InternalError("cannot encode the public key");
  auto digest = Sha256(absl::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

}  // namespace keyward::crypto

namespace keyward::crypto {
namespace {

using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

absl::StatusOr<std::string> CompressedPoint(EVP_PKEY* pkey) {
  // The public point as OpenSSL gives it (uncompressed: 0x04 || X || Y),
  // compressed here: 0x02 or 0x03 (Y's parity) || X (SEC 1, 2.3.3).
  unsigned char point[97];
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                      &len) != 1 ||
      len != 97 || point[0] != 0x04) {
    ERR_clear_error();
    return absl::InternalError("cannot encode the public key");
  }
  std::string out(kEcdsaP384CompressedPointSize, '\0');
  out[0] = static_cast<char>((point[96] & 1) != 0 ? 0x03 : 0x02);
  std::memcpy(out.data() + 1, point + 1, 48);
  return out;
}

// An EVP_PKEY for P-384 from parameters (a public point, and optionally
// the private scalar).
EVP_PKEY* P384FromData(absl::string_view point, const BIGNUM* priv) {
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld == nullptr) return nullptr;
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-384", 0);
  if (!point.empty()) {
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  }
  if (priv != nullptr) OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  OSSL_PARAM_BLD_free(bld);
  if (params == nullptr) return nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  const int selection = priv != nullptr ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, selection, params) != 1) {
    pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return pkey;
}

}  // namespace

struct EcdsaP384Signer::Impl {
  PkeyPtr key{nullptr, EVP_PKEY_free};
  MdCtxPtr ctx{nullptr, EVP_MD_CTX_free};
};

absl::StatusOr<std::unique_ptr<EcdsaP384Signer>> EcdsaP384Signer::Generate() {
  std::unique_ptr<EcdsaP384Signer> s(new EcdsaP384Signer());
  s->impl_ = std::make_unique<Impl>();
  s->impl_->key.reset(EVP_EC_gen("P-384"));
  if (s->impl_->key == nullptr) {
    ERR_clear_error();
    return absl::InternalError("cannot generate an ECDSA P-384 key");
  }
  s->impl_->ctx.reset(EVP_MD_CTX_new());
  if (s->impl_->ctx == nullptr ||
      EVP_DigestSignInit_ex(s->impl_->ctx.get(), nullptr, "SHA384", nullptr, nullptr,
                            s->impl_->key.get(), nullptr) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot start an ECDSA P-384 signature");
  }
  auto pub = CompressedPoint(s->impl_->key.get());
  if (!pub.ok()) return pub.status();
  s->public_key_ = std::move(*pub);
  return s;
}

absl::StatusOr<std::unique_ptr<EcdsaP384Signer>> EcdsaP384Signer::FromPrivateScalarForTesting(
    absl::string_view scalar) {
  if (scalar.size() != 48) return absl::InvalidArgumentError("a P-384 scalar is 48 bytes");
  BIGNUM* d = BN_bin2bn(reinterpret_cast<const unsigned char*>(scalar.data()), 48, nullptr);
  // The public point is d·G.
  EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_secp384r1);
  EC_POINT* q = group ? EC_POINT_new(group) : nullptr;
  std::string point(97, '\0');
  const bool ok = d != nullptr && q != nullptr &&
                  EC_POINT_mul(group, q, d, nullptr, nullptr, nullptr) == 1 &&
                  EC_POINT_point2oct(group, q, POINT_CONVERSION_UNCOMPRESSED,
                                     reinterpret_cast<unsigned char*>(point.data()), 97,
                                     nullptr) == 97;
  EVP_PKEY* pkey = ok ? P384FromData(point, d) : nullptr;
  EC_POINT_free(q);
  EC_GROUP_free(group);
  BN_clear_free(d);
  if (pkey == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a usable P-384 private scalar");
  }
  std::unique_ptr<EcdsaP384Signer> s(new EcdsaP384Signer());
  s->impl_ = std::make_unique<Impl>();
  s->impl_->key.reset(pkey);
  s->impl_->ctx.reset(EVP_MD_CTX_new());
  if (s->impl_->ctx == nullptr ||
      EVP_DigestSignInit_ex(s->impl_->ctx.get(), nullptr, "SHA384", nullptr, nullptr,
                            s->impl_->key.get(), nullptr) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot start an ECDSA P-384 signature");
  }
  auto pub = CompressedPoint(s->impl_->key.get());
  if (!pub.ok()) return pub.status();
  s->public_key_ = std::move(*pub);
  return s;
}

EcdsaP384Signer::~EcdsaP384Signer() = default;

absl::Status EcdsaP384Signer::Update(absl::string_view data) {
  if (impl_->ctx == nullptr) return absl::FailedPreconditionError("the signer was finished");
  if (EVP_DigestSignUpdate(impl_->ctx.get(), data.data(), data.size()) != 1) {
    ERR_clear_error();
    return absl::InternalError("signing failed");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EcdsaP384Signer::Finish() {
  if (impl_->ctx == nullptr) return absl::FailedPreconditionError("the signer was finished");
  size_t len = 0;
  std::string sig;
  if (EVP_DigestSignFinal(impl_->ctx.get(), nullptr, &len) == 1) {
    sig.resize(len);
    if (EVP_DigestSignFinal(impl_->ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                            &len) == 1) {
      sig.resize(len);
      impl_->ctx.reset();
      return sig;
    }
  }
  ERR_clear_error();
  return absl::InternalError("signing failed");
}

struct EcdsaP384Verifier::Impl {
  PkeyPtr key{nullptr, EVP_PKEY_free};
  MdCtxPtr ctx{nullptr, EVP_MD_CTX_free};
};

absl::StatusOr<std::unique_ptr<EcdsaP384Verifier>> EcdsaP384Verifier::FromPoint(
    absl::string_view point) {
  EVP_PKEY* pkey = point.empty() ? nullptr : P384FromData(point, nullptr);
  if (pkey == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a public key on P-384");
  }
  std::unique_ptr<EcdsaP384Verifier> v(new EcdsaP384Verifier());
  v->impl_ = std::make_unique<Impl>();
  v->impl_->key.reset(pkey);
  v->impl_->ctx.reset(EVP_MD_CTX_new());
  if (v->impl_->ctx == nullptr ||
      EVP_DigestVerifyInit_ex(v->impl_->ctx.get(), nullptr, "SHA384", nullptr, nullptr,
                              v->impl_->key.get(), nullptr) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot start verifying an ECDSA P-384 signature");
  }
  return v;
}

EcdsaP384Verifier::~EcdsaP384Verifier() = default;

absl::Status EcdsaP384Verifier::Update(absl::string_view data) {
  if (EVP_DigestVerifyUpdate(impl_->ctx.get(), data.data(), data.size()) != 1) {
    ERR_clear_error();
    return absl::InternalError("verification failed");
  }
  return absl::OkStatus();
}

bool EcdsaP384Verifier::Verify(absl::string_view der) {
  const bool ok = EVP_DigestVerifyFinal(impl_->ctx.get(),
                                        reinterpret_cast<const unsigned char*>(der.data()),
                                        der.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace keyward::crypto

// Long on purpose: one job, the frozen vectors, and most of it is tables of
// cases (valid and invalid, randomized and deterministic) kept together so
// the file reads as the list of what the vectors cover.
//
// Writes the frozen test vectors of the field value format v1
// (docs/format.md §15.5) to <dir>/fields.json:
//   build/release/bin/field_vector_generator tests/vectors/fields_v1
// Run once: the nonces of randomized values are random (an Aead draws them;
// callers never choose nonces), so every run writes different bytes.  It
// refuses to overwrite an existing file, because released vectors never
// change; readers only ever decrypt them.  The data keys are fixed test
// patterns, never real keys.
//
//   field_vector_generator --append-deterministic tests/vectors/fields_v1
// adds the deterministic vectors (treatment 0x12, §15.6) to the file
// released before that treatment existed: the file's vectors are kept byte
// for byte, but for one expectation that treatment changed (the randomized
// value with its first byte set to 0x12 now fails authentication instead of
// naming an unsupported treatment).  It refuses a file that already has
// deterministic vectors.  Deterministic values have no nonce, so these
// vectors are the same bytes on every run.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/aead.h"
#include "crypto/deterministic_aead.h"
#include "format/field_value.h"
#include "nlohmann/json.hpp"

namespace keyward {
namespace {

using format::FieldLocation;
using format::FieldType;
using Json = nlohmann::ordered_json;

std::string Hex(absl::string_view s) { return absl::BytesToHexString(s); }

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "field_vector_generator: %s\n", s.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) Die(v.status());
  return std::move(*v);
}

// The data key of vector `seed`: 32 bytes from a fixed pattern.
SecretData TestKey(int seed) {
  std::string k(32, '\0');
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = static_cast<char>((seed * 29 + static_cast<int>(i) * 7 + 3) & 0xff);
  }
  return SecretData::CopyFrom(k);
}

std::string Be64(uint64_t v) {
  char b[8];
  absl::big_endian::Store64(b, v);
  return std::string(b, 8);
}

std::string Integer(int64_t v) { return Be64(static_cast<uint64_t>(v)); }

std::string Real(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  return Be64(bits);
}

const char* TypeName(FieldType t) {
  switch (t) {
    case FieldType::kInteger: return "integer";
    case FieldType::kReal: return "real";
    case FieldType::kText: return "text";
    case FieldType::kBytes: return "bytes";
    case FieldType::kJson: return "json";
  }
  return "?";
}

std::unique_ptr<crypto::Aead> AeadOf(const SecretData& key) {
  return Must(crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, key));
}

// The binary form, as Keyward writes it.
std::string Seal(const SecretData& key, uint32_t ref, const FieldLocation& where, FieldType type,
                 absl::string_view payload) {
  auto aead = Must(crypto::internal::NewNonceAead(crypto::AeadAlgorithm::kAes256Gcm, key));
  return Must(format::SealField(*aead, ref, where, type, payload));
}

// A value Keyward's writer never produces: `plaintext` (type byte and
// payload, as given) sealed directly with AES-256-GCM and §15.2's
// associated data, behind a valid header.
std::string SealByHand(const SecretData& key, uint32_t ref, const FieldLocation& where,
                       absl::string_view plaintext) {
  std::string out(1, static_cast<char>(format::kFieldRandomizedV1));
  char b[4];
  absl::big_endian::Store32(b, ref);
  out.append(b, 4);
  out += Must(AeadOf(key)->Encrypt(plaintext,
                                   format::FieldAad(format::kFieldRandomizedV1, ref, where)));
  return out;
}

// The 64-byte AES-256-SIV key of a deterministic column (§15.6).
SecretData SivKey(const SecretData& key, const FieldLocation& where) {
  return Must(format::DeterministicFieldKey(key, where));
}

std::unique_ptr<crypto::DeterministicAead> DaeadOf(const SecretData& key,
                                                   const FieldLocation& where) {
  return Must(crypto::DeterministicAead::New(SivKey(key, where)));
}

// The binary form of a deterministic value (0x12), as Keyward writes it.
std::string SealDeterministic(const SecretData& key, uint32_t ref, const FieldLocation& where,
                              FieldType type, absl::string_view payload) {
  std::string out;
  const absl::Status s =
      format::SealDeterministicFieldInto(*DaeadOf(key, where), ref, where, type, payload, &out);
  if (!s.ok()) Die(s);
  return out;
}

// As SealByHand, for a deterministic value: `plaintext` sealed directly
// with AES-256-SIV and §15.6's associated data (empty row id).
std::string SealDeterministicByHand(const SecretData& key, uint32_t ref,
                                    const FieldLocation& where, absl::string_view plaintext) {
  FieldLocation column_wide = where;
  column_wide.row_id = "";
  std::string out(1, static_cast<char>(format::kFieldDeterministicV1));
  char b[4];
  absl::big_endian::Store32(b, ref);
  out.append(b, 4);
  out += Must(DaeadOf(key, where)->EncryptDeterministically(
      plaintext, format::FieldAad(format::kFieldDeterministicV1, ref, column_wide)));
  return out;
}

// Seals `payload` as text until the text form holds `c` (a random nonce
// decides which characters appear).
std::string SealUntilTextHas(const SecretData& key, uint32_t ref, const FieldLocation& where,
                             absl::string_view payload, char c) {
  for (int i = 0; i < 1000; ++i) {
    std::string binary = Seal(key, ref, where, FieldType::kText, payload);
    if (format::FieldToText(binary).find(c, 4) != std::string::npos) return binary;
  }
  Die(absl::InternalError(absl::StrCat("no text form with '", std::string(1, c), "'")));
}

class Vectors {
 public:
  // A value that MUST decrypt to exactly `type` and `payload`.
  void Valid(const std::string& name, const std::string& description, int seed,
             const FieldLocation& where, uint32_t ref, FieldType type,
             absl::string_view payload) {
    const SecretData key = TestKey(seed);
    const std::string stored = format::FieldToText(Seal(key, ref, where, type, payload));
    Json v = Common(name, description, key, where, ref, stored);
    v["type"] = TypeName(type);
    v["payload"] = Hex(payload);
    vectors_.push_back(std::move(v));
    ++valid_;
  }

  // A deterministic value (§15.6) that MUST decrypt to exactly `type` and
  // `payload`; `siv_key` records the derived AES-256-SIV key.
  void ValidDeterministic(const std::string& name, const std::string& description, int seed,
                          const FieldLocation& where, uint32_t ref, FieldType type,
                          absl::string_view payload) {
    const SecretData key = TestKey(seed);
    const std::string stored =
        format::FieldToText(SealDeterministic(key, ref, where, type, payload));
    Json v = Common(name, description, key, where, ref, stored);
    v["siv_key"] = Hex(SivKey(key, where).AsStringView());
    v["type"] = TypeName(type);
    v["payload"] = Hex(payload);
    vectors_.push_back(std::move(v));
    ++valid_;
  }

  // A stored text value that MUST fail with `error` when read with the key
  // of `seed` at `where`.
  void Invalid(const std::string& name, const std::string& description, int seed,
               const FieldLocation& where, uint32_t ref, const std::string& stored,
               const std::string& error) {
    Json v = Common(name, description, TestKey(seed), where, ref, stored);
    v["expected_error"] = error;
    vectors_.push_back(std::move(v));
    ++invalid_;
  }

  static constexpr const char* kNote =
      "Frozen (docs/format.md section 15.5). Read each stored text value with "
      "data_key at the location dataset, table, column, tenant, row_id: a value "
      "starting 0x11 with AES-256-GCM under data_key (section 15.1), one starting "
      "0x12 with AES-256-SIV under the key derived from data_key (section 15.6; "
      "the row id is not bound, siv_key records the derived key). It must decrypt "
      "to exactly type and payload, or fail with expected_error "
      "(keyward::ErrorCodeName). key_ref is the key reference the value was "
      "sealed with.";

  Json ToJson() const {
    return Json{{"format", "keyward field value v1"}, {"note", kNote}, {"vectors", vectors_}};
  }
  const Json& vectors() const { return vectors_; }
  int valid() const { return valid_; }
  int invalid() const { return invalid_; }

 private:
  static Json Common(const std::string& name, const std::string& description,
                     const SecretData& key, const FieldLocation& where, uint32_t ref,
                     const std::string& stored) {
    return Json{{"name", name},
                {"description", description},
                {"data_key", Hex(key.AsStringView())},
                {"dataset", where.dataset},
                {"table", where.table},
                {"column", where.column},
                {"tenant", where.tenant},
                {"row_id", where.row_id},
                {"key_ref", ref},
                {"stored", stored}};
  }

  Json vectors_ = Json::array();
  int valid_ = 0, invalid_ = 0;
};

FieldLocation At(std::string column, std::string row_id = "42") {
  return FieldLocation{"crm", "customers", std::move(column), "acme", std::move(row_id)};
}

void AddValid(Vectors& out) {
  int seed = 0;
  auto valid = [&](const std::string& name, const std::string& description,
                   const FieldLocation& where, uint32_t ref, FieldType type,
                   absl::string_view payload) {
    out.Valid(name, description, ++seed, where, ref, type, payload);
  };
  valid("integer-zero", "integer 0", At("visits"), 7, FieldType::kInteger, Integer(0));
  valid("integer-minus-one", "integer -1", At("balance"), 7, FieldType::kInteger, Integer(-1));
  valid("integer-min", "integer INT64_MIN (-9223372036854775808)", At("balance"), 7,
        FieldType::kInteger, Integer(std::numeric_limits<int64_t>::min()));
  valid("integer-max", "integer INT64_MAX (9223372036854775807)", At("balance"), 7,
        FieldType::kInteger, Integer(std::numeric_limits<int64_t>::max()));
  valid("integer-positive", "integer 1234567890123", At("balance"), 7, FieldType::kInteger,
        Integer(1234567890123));
  valid("real-pi", "real 3.141592653589793", At("score"), 7, FieldType::kReal,
        Real(3.141592653589793));
  valid("real-negative-zero", "real -0.0: the sign bit is kept", At("score"), 7,
        FieldType::kReal, Real(-0.0));
  valid("real-nan-payload",
        "real: a quiet NaN with payload 0xdeadbeef; the 8 bytes are kept exactly",
        At("score"), 7, FieldType::kReal, Be64(0x7ff80000deadbeefULL));
  valid("real-negative-infinity", "real -infinity", At("score"), 7, FieldType::kReal,
        Real(-std::numeric_limits<double>::infinity()));
  valid("text-empty", "the empty text: the smallest value, 34 bytes", At("nickname"), 7,
        FieldType::kText, "");
  valid("text-ascii", "ASCII text", At("email"), 7, FieldType::kText, "alice@example.com");
  valid("text-multibyte-utf8", "text with 2-, 3- and 4-byte UTF-8 sequences", At("name"), 7,
        FieldType::kText, "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m \xe2\x80\x94 \xe6\x9d\xb1\xe4\xba"
                          "\xac \xf0\x9f\x94\x91");
  std::string long_text;
  for (int i = 0; long_text.size() < 1000; ++i) long_text += absl::StrCat("line ", i, "; ");
  long_text.resize(1000);
  valid("text-1000-bytes", "1000 bytes of ASCII text (many AES blocks)", At("notes"), 7,
        FieldType::kText, long_text);
  valid("bytes-nul-and-ff", "bytes 00 ff 00 01 fe ff 00: NUL and 0xff kept", At("avatar"), 7,
        FieldType::kBytes, std::string("\x00\xff\x00\x01\xfe\xff\x00", 7));
  valid("bytes-empty", "zero bytes", At("avatar"), 7, FieldType::kBytes, "");
  valid("json-object", "a JSON text, byte for byte (spacing and key order kept)",
        At("preferences"), 7, FieldType::kJson,
        "{\"plan\": \"pro\", \"seats\":[1,2,3],\"note\":\"\xc3\xbc\",\"x\":null}");
  FieldLocation no_tenant = At("email", "7");
  no_tenant.tenant = "";
  valid("no-tenant", "a data set without tenants: the tenant is the empty string", no_tenant,
        7, FieldType::kText, "bob@example.com");
  std::string long_id = "order/2026-12-02/";
  while (long_id.size() < 300) long_id += "0123456789abcdef";
  long_id.resize(300);
  valid("long-text-row-id", "a text id column: a row id of 300 bytes", At("email", long_id), 7,
        FieldType::kText, "carol@example.com");
  valid("key-ref-1", "key reference 1, the smallest", At("email"), 1, FieldType::kText,
        "dave@example.com");
  valid("key-ref-max", "key reference 0xffffffff, the largest", At("email"), 0xffffffffu,
        FieldType::kText, "erin@example.com");
}

void AddInvalid(Vectors& out) {
  int seed = 100;
  auto invalid = [&](const std::string& name, const std::string& description,
                     const FieldLocation& where, uint32_t ref, const std::string& stored,
                     const std::string& error) {
    out.Invalid(name, description, ++seed, where, ref, stored, error);
  };
  // invalid() names TestKey(++seed): next_key() is the key the next call
  // names, so a value sealed with it is read with the right key.
  auto next_key = [&] { return TestKey(seed + 1); };
  const FieldLocation home = At("email");  // crm / customers.email, tenant acme, row 42
  const std::string secret = "123-45-6789";
  auto moved = [&](const std::string& name, const std::string& what, FieldLocation where) {
    const std::string stored =
        format::FieldToText(Seal(next_key(), 7, home, FieldType::kText, secret));
    invalid(name,
            "sealed for data set crm, table customers, column email, tenant acme, row 42; "
            "read " + what,
            where, 7, stored, "authentication-failed");
  };
  FieldLocation w = home;
  w.row_id = "43";
  moved("moved-to-another-row", "at row 43", w);
  w = home;
  w.column = "phone";
  moved("moved-to-another-column", "as column phone", w);
  w = home;
  w.table = "customers_archive";
  moved("moved-to-another-table", "in table customers_archive", w);
  w = home;
  w.tenant = "globex";
  moved("moved-to-another-tenant", "for tenant globex", w);
  w = home;
  w.dataset = "billing";
  moved("moved-to-another-dataset", "in data set billing", w);
  w = home;
  w.tenant = "";
  moved("moved-to-no-tenant", "without a tenant (tenant \"\")", w);
  w = home;
  w.dataset = "crmc";
  w.table = "ustomers";
  moved("length-prefix-boundary",
        "as data set crmc, table ustomers: the same bytes unless every part is "
        "length-prefixed",
        w);

  auto text_of = [&](std::string binary) { return format::FieldToText(binary); };
  auto sealed = [&](uint32_t ref, absl::string_view text) {
    return Seal(next_key(), ref, home, FieldType::kText, text);
  };
  std::string b = sealed(7, secret);
  b[4] ^= 0x01;
  invalid("key-ref-changed", "sealed with key reference 7; the stored value names 6",
          home, 7, text_of(b), "authentication-failed");
  invalid("another-data-key", "sealed under another data key than the vector's", home, 7,
          text_of(Seal(TestKey(999), 7, home, FieldType::kText, secret)),
          "authentication-failed");
  b = sealed(7, secret);
  b[5] ^= 0x01;
  invalid("flipped-nonce-bit", "the lowest bit of the nonce's first byte flipped", home, 7,
          text_of(b), "authentication-failed");
  b = sealed(7, secret);
  b[5 + 12 + 3] ^= 0x80;
  invalid("flipped-ciphertext-bit", "the top bit of the ciphertext's fourth byte flipped",
          home, 7, text_of(b), "authentication-failed");
  b = sealed(7, secret);
  b.back() ^= 0x01;
  invalid("flipped-tag-bit", "the lowest bit of the tag's last byte flipped", home, 7,
          text_of(b), "authentication-failed");
  b = sealed(7, "");
  invalid("truncated-33-bytes", "an empty text's 34 bytes without the last one", home, 7,
          text_of(b.substr(0, 33)), "truncated");
  b = sealed(7, secret);
  invalid("truncated-to-header", "only the version byte and the key reference (5 bytes)",
          home, 7, text_of(b.substr(0, 5)), "truncated");
  const std::pair<uint8_t, const char*> first_bytes[] = {
      // version 1, deterministic: a randomized value's bytes read as
      // synthetic IV and ciphertext do not authenticate.  (Released as
      // "unsupported-version" while 0x12 was reserved.)
      {0x12, "authentication-failed"},
      {0x13, "unsupported-version"},    // version 1, an unknown treatment
      {0x21, "unsupported-version"},    // version 2
      {0x00, "not-a-keyward-message"},  // not a field value
  };
  for (const auto& [first, error] : first_bytes) {
    b = sealed(7, secret);
    b[0] = static_cast<char>(first);
    invalid(absl::StrCat("first-byte-0x", absl::Hex(first, absl::kZeroPad2)),
            absl::StrCat("a valid value with its first byte set to 0x",
                         absl::Hex(first, absl::kZeroPad2)),
            home, 7, text_of(b), error);
  }
  invalid("empty-after-prefix", "\"kw1.\" and nothing after it (an empty binary form)", home,
          7, "kw1.", "not-a-keyward-message");
  // "padded" makes 40 bytes: 54 characters, so padding adds "==".
  b = sealed(7, "padded");
  std::string padded = text_of(b);
  while (padded.size() % 4 != 0) padded += '=';
  invalid("text-with-padding", "a valid value's text form with \"=\" padding added", home, 7,
          padded, "not-a-keyward-message");
  std::string plus = text_of(SealUntilTextHas(next_key(), 7, home, secret, '-'));
  plus[plus.find('-', 4)] = '+';
  invalid("text-with-plus", "a valid value's text form with its first '-' written as '+'",
          home, 7, plus, "not-a-keyward-message");
  std::string slash = text_of(SealUntilTextHas(next_key(), 7, home, secret, '_'));
  slash[slash.find('_', 4)] = '/';
  invalid("text-with-slash", "a valid value's text form with its first '_' written as '/'",
          home, 7, slash, "not-a-keyward-message");
  invalid("text-without-prefix", "a valid value's text form without \"kw1.\"", home, 7,
          text_of(sealed(7, secret)).substr(4), "not-a-keyward-message");
  invalid("text-prefix-upper-case", "a valid value's text form with \"KW1.\" for \"kw1.\"",
          home, 7, "KW1." + text_of(sealed(7, secret)).substr(4), "not-a-keyward-message");

  // Authentic values with a plaintext Keyward's writer never produces.
  auto by_hand = [&](absl::string_view plaintext) {
    return text_of(SealByHand(next_key(), 7, home, plaintext));
  };
  invalid("type-0x09", "authentic, but its decrypted type byte is 0x09", home, 7,
          by_hand("\x09secret"), "malformed-header");
  invalid("type-0x00", "authentic, but its decrypted type byte is 0x00", home, 7,
          by_hand(std::string("\x00secret", 7)), "malformed-header");
  invalid("integer-7-bytes", "authentic, but an integer with a 7-byte payload", home, 7,
          by_hand(std::string("\x01", 1) + Integer(42).substr(1)), "malformed-header");
  invalid("real-9-bytes", "authentic, but a real with a 9-byte payload", home, 7,
          by_hand(std::string("\x02", 1) + Real(1.5) + std::string(1, '\0')),
          "malformed-header");
}

// Deterministic values (treatment 0x12, §15.6).  Valid ones are read with
// an empty row id, but three read the same bytes at rows "42" and "43":
// the row id is not bound.
void AddDeterministic(Vectors& out) {
  auto at = [](std::string column, std::string tenant = "acme") {
    return FieldLocation{"crm", "customers", std::move(column), std::move(tenant), ""};
  };
  int seed = 200;
  auto valid = [&](const std::string& name, const std::string& description,
                   const FieldLocation& where, uint32_t ref, FieldType type,
                   absl::string_view payload) {
    out.ValidDeterministic(name, description, ++seed, where, ref, type, payload);
  };
  valid("deterministic-text-empty",
        "deterministic: the empty text, the smallest value (22 bytes; the plaintext is the "
        "type byte alone)",
        at("nickname"), 7, FieldType::kText, "");
  valid("deterministic-text-ascii", "deterministic: ASCII text, tenant acme", at("email"), 7,
        FieldType::kText, "alice@example.com");
  valid("deterministic-text-no-tenant",
        "deterministic: a data set without tenants (tenant \"\")", at("email", ""), 7,
        FieldType::kText, "bob@example.com");
  valid("deterministic-text-15-bytes",
        "deterministic: 15 bytes of text, a 16-byte plaintext (one whole AES block)",
        at("email"), 7, FieldType::kText, "fifteen@bytes.x");
  valid("deterministic-text-multibyte-utf8",
        "deterministic: text with 2-, 3- and 4-byte UTF-8 sequences", at("name"), 7,
        FieldType::kText,
        "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m \xe2\x80\x94 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x94\x91");
  std::string long_text;
  for (int i = 0; long_text.size() < 1000; ++i) long_text += absl::StrCat("line ", i, "; ");
  long_text.resize(1000);
  valid("deterministic-text-1000-bytes", "deterministic: 1000 bytes of ASCII text",
        at("notes"), 7, FieldType::kText, long_text);
  valid("deterministic-integer", "deterministic: integer 1234567890123", at("customer_no"), 7,
        FieldType::kInteger, Integer(1234567890123));
  valid("deterministic-integer-minus-one", "deterministic: integer -1", at("customer_no"), 7,
        FieldType::kInteger, Integer(-1));
  valid("deterministic-real-negative-zero", "deterministic: real -0.0", at("score"), 7,
        FieldType::kReal, Real(-0.0));
  valid("deterministic-bytes", "deterministic: bytes 00 ff 00 01 fe ff 00", at("avatar"), 7,
        FieldType::kBytes, std::string("\x00\xff\x00\x01\xfe\xff\x00", 7));
  valid("deterministic-bytes-empty", "deterministic: zero bytes (22 bytes)", at("avatar"), 7,
        FieldType::kBytes, "");
  valid("deterministic-json", "deterministic: a JSON text, byte for byte", at("preferences"),
        7, FieldType::kJson, "{\"plan\":\"pro\"}");
  valid("deterministic-key-ref-max", "deterministic: key reference 0xffffffff",
        at("email"), 0xffffffffu, FieldType::kText, "erin@example.com");

  // The same value, key and column as deterministic-text-ascii (seed 202):
  // the same bytes, whatever row it is read at.
  const int ascii_seed = 202;
  FieldLocation row = at("email");
  row.row_id = "42";
  out.ValidDeterministic("deterministic-read-at-row-42",
                         "deterministic: the bytes of deterministic-text-ascii read at row 42: "
                         "the row id is not bound",
                         ascii_seed, row, 7, FieldType::kText, "alice@example.com");
  row.row_id = "43";
  out.ValidDeterministic("deterministic-read-at-row-43",
                         "deterministic: the bytes of deterministic-text-ascii read at row 43: "
                         "the row id is not bound",
                         ascii_seed, row, 7, FieldType::kText, "alice@example.com");
  // Equal plaintexts elsewhere: different bytes.
  out.ValidDeterministic("deterministic-same-value-tenant-globex",
                         "deterministic: the value, data key and column of "
                         "deterministic-text-ascii for tenant globex: other bytes",
                         ascii_seed, at("email", "globex"), 7, FieldType::kText,
                         "alice@example.com");
  out.ValidDeterministic("deterministic-same-value-column-backup_email",
                         "deterministic: the value, data key and tenant of "
                         "deterministic-text-ascii in column backup_email: other bytes",
                         ascii_seed, at("backup_email"), 7, FieldType::kText,
                         "alice@example.com");
  out.ValidDeterministic("deterministic-same-value-key-ref-8",
                         "deterministic: the value, data key and column of "
                         "deterministic-text-ascii under key reference 8: other bytes",
                         ascii_seed, at("email"), 8, FieldType::kText, "alice@example.com");
  out.ValidDeterministic("deterministic-same-digits-as-integer",
                         "deterministic: the integer 1234567890123 in the column of "
                         "deterministic-text-1234567890123: the type is encrypted, other bytes",
                         ascii_seed, at("email"), 7, FieldType::kInteger,
                         Integer(1234567890123));
  out.ValidDeterministic("deterministic-text-1234567890123",
                         "deterministic: the text 1234567890123 (see "
                         "deterministic-same-digits-as-integer)",
                         ascii_seed, at("email"), 7, FieldType::kText, "1234567890123");

  seed = 300;
  auto invalid = [&](const std::string& name, const std::string& description,
                     const FieldLocation& where, uint32_t ref, const std::string& stored,
                     const std::string& error) {
    out.Invalid(name, description, ++seed, where, ref, stored, error);
  };
  auto next_key = [&] { return TestKey(seed + 1); };
  const FieldLocation home = at("email");  // crm / customers.email, tenant acme
  const std::string secret = "123-45-6789";
  auto text_of = [&](const std::string& binary) { return format::FieldToText(binary); };
  auto sealed = [&](uint32_t ref, absl::string_view text) {
    return SealDeterministic(next_key(), ref, home, FieldType::kText, text);
  };
  auto moved = [&](const std::string& name, const std::string& what, FieldLocation where) {
    invalid(name,
            "deterministic, sealed for data set crm, table customers, column email, tenant "
            "acme; read " + what,
            where, 7, text_of(sealed(7, secret)), "authentication-failed");
  };
  FieldLocation w = home;
  w.column = "phone";
  moved("deterministic-moved-to-another-column", "as column phone", w);
  w = home;
  w.table = "customers_archive";
  moved("deterministic-moved-to-another-table", "in table customers_archive", w);
  w = home;
  w.tenant = "globex";
  moved("deterministic-moved-to-another-tenant", "for tenant globex", w);
  w = home;
  w.tenant = "";
  moved("deterministic-moved-to-no-tenant", "without a tenant (tenant \"\")", w);
  w = home;
  w.dataset = "billing";
  moved("deterministic-moved-to-another-dataset", "in data set billing", w);
  w = home;
  w.dataset = "crmc";
  w.table = "ustomers";
  moved("deterministic-length-prefix-boundary",
        "as data set crmc, table ustomers: the same key and associated data unless every "
        "part is length-prefixed",
        w);

  std::string b = sealed(7, secret);
  b[4] ^= 0x01;
  invalid("deterministic-key-ref-changed",
          "deterministic, sealed with key reference 7; the stored value names 6", home, 7,
          text_of(b), "authentication-failed");
  invalid("deterministic-another-data-key",
          "deterministic, sealed under another data key than the vector's", home, 7,
          text_of(SealDeterministic(TestKey(999), 7, home, FieldType::kText, secret)),
          "authentication-failed");
  b = sealed(7, secret);
  b[5] ^= 0x01;
  invalid("deterministic-flipped-siv-bit",
          "deterministic: the lowest bit of the synthetic IV's first byte flipped", home, 7,
          text_of(b), "authentication-failed");
  b = sealed(7, secret);
  b[5 + 15] ^= 0x80;
  invalid("deterministic-flipped-siv-last-byte",
          "deterministic: the top bit of the synthetic IV's last byte flipped", home, 7,
          text_of(b), "authentication-failed");
  b = sealed(7, secret);
  b[5 + 16] ^= 0x01;
  invalid("deterministic-flipped-type-byte",
          "deterministic: the lowest bit of the ciphertext's first byte (the type) flipped",
          home, 7, text_of(b), "authentication-failed");
  b = sealed(7, secret);
  b[5 + 16 + 3] ^= 0x80;
  invalid("deterministic-flipped-ciphertext-bit",
          "deterministic: the top bit of the ciphertext's fourth byte flipped", home, 7,
          text_of(b), "authentication-failed");
  b = sealed(7, secret);
  b.push_back('\0');
  invalid("deterministic-extra-byte",
          "deterministic: a zero byte appended to a valid value", home, 7, text_of(b),
          "authentication-failed");
  b = sealed(7, "");
  invalid("deterministic-truncated-21-bytes",
          "deterministic: an empty text's 22 bytes without the last one", home, 7,
          text_of(b.substr(0, 21)), "truncated");
  b = sealed(7, secret);
  invalid("deterministic-truncated-to-header",
          "deterministic: only the version byte and the key reference (5 bytes)", home, 7,
          text_of(b.substr(0, 5)), "truncated");
  // The other treatment's first byte: 39 bytes, read as AES-256-GCM.
  b = sealed(7, "alice@example.com");
  b[0] = static_cast<char>(format::kFieldRandomizedV1);
  invalid("deterministic-first-byte-0x11",
          "a valid deterministic value (39 bytes) with its first byte set to 0x11 "
          "(randomized)",
          home, 7, text_of(b), "authentication-failed");
  b = sealed(7, secret);
  b[0] = static_cast<char>(0x13);
  invalid("deterministic-first-byte-0x13",
          "a valid deterministic value with its first byte set to 0x13", home, 7, text_of(b),
          "unsupported-version");
  // A deterministic value bound to its row (a writer that put the row id
  // into the associated data): no reader can open it, at that row or any.
  {
    const SecretData key = next_key();
    FieldLocation with_row = home;
    with_row.row_id = "42";
    std::string bound(1, static_cast<char>(format::kFieldDeterministicV1));
    char r[4];
    absl::big_endian::Store32(r, 7);
    bound.append(r, 4);
    bound += Must(DaeadOf(key, home)->EncryptDeterministically(
        std::string("\x03", 1) + secret,
        format::FieldAad(format::kFieldDeterministicV1, 7, with_row)));
    invalid("deterministic-row-id-bound",
            "deterministic, but sealed with row id 42 in the associated data (§15.6 says "
            "empty); read at row 42",
            with_row, 7, text_of(bound), "authentication-failed");
  }
  // A deterministic value sealed under the data key itself (used as both
  // SIV halves), not the derived key.
  {
    const SecretData key = next_key();
    const std::string raw = std::string(key.AsStringView()) + std::string(key.AsStringView());
    auto daead = Must(crypto::DeterministicAead::New(SecretData::CopyFrom(raw)));
    std::string underived;
    const absl::Status s = format::SealDeterministicFieldInto(*daead, 7, home, FieldType::kText,
                                                              secret, &underived);
    if (!s.ok()) Die(s);
    invalid("deterministic-key-not-derived",
            "deterministic, sealed under data key || data key instead of the HKDF-derived key",
            home, 7, text_of(underived), "authentication-failed");
  }

  auto by_hand = [&](absl::string_view plaintext) {
    return text_of(SealDeterministicByHand(next_key(), 7, home, plaintext));
  };
  invalid("deterministic-type-0x09",
          "deterministic, authentic, but its decrypted type byte is 0x09", home, 7,
          by_hand("\x09secret"), "malformed-header");
  invalid("deterministic-type-0x00",
          "deterministic, authentic, but its decrypted type byte is 0x00", home, 7,
          by_hand(std::string("\x00secret", 7)), "malformed-header");
  invalid("deterministic-integer-7-bytes",
          "deterministic, authentic, but an integer with a 7-byte payload", home, 7,
          by_hand(std::string("\x01", 1) + Integer(42).substr(1)), "malformed-header");
  invalid("deterministic-real-9-bytes",
          "deterministic, authentic, but a real with a 9-byte payload", home, 7,
          by_hand(std::string("\x02", 1) + Real(1.5) + std::string(1, '\0')),
          "malformed-header");
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool WriteNew(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// --append-deterministic: the released file, plus the deterministic
// vectors, with the one expectation 0x12 changed.  Everything else of the
// released vectors is kept as it is.
int AppendDeterministic(const std::string& path) {
  std::string text;
  if (!ReadFile(path, &text)) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  Json file = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!file.is_object() || !file.contains("vectors") || !file["vectors"].is_array()) {
    std::fprintf(stderr, "%s is not a field vector file\n", path.c_str());
    return 1;
  }
  // Re-serialized, the released file must come out byte for byte: then
  // only the changes below differ.
  if (file.dump(2) + "\n" != text) {
    std::fprintf(stderr, "%s does not re-serialize byte for byte: left as it is\n",
                 path.c_str());
    return 1;
  }
  int changed = 0;
  for (Json& v : file["vectors"]) {
    const std::string name = v.value("name", "");
    if (name.rfind("deterministic-", 0) == 0) {
      std::fprintf(stderr, "%s already has deterministic vectors: left as it is\n",
                   path.c_str());
      return 1;
    }
    if (name == "first-byte-0x12" && v.value("expected_error", "") == "unsupported-version") {
      v["expected_error"] = "authentication-failed";
      ++changed;
    }
  }
  if (changed != 1) {
    std::fprintf(stderr, "%s: no first-byte-0x12 vector expecting unsupported-version\n",
                 path.c_str());
    return 1;
  }
  Vectors added;
  AddDeterministic(added);
  for (const Json& v : added.vectors()) file["vectors"].push_back(v);
  file["note"] = Vectors::kNote;
  const std::string tmp = path + ".new";
  ::unlink(tmp.c_str());
  if (!WriteNew(tmp, file.dump(2) + "\n") || ::rename(tmp.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "%s: write failed\n", path.c_str());
    return 1;
  }
  std::printf("appended to %s: %d valid, %d invalid deterministic vectors\n", path.c_str(),
              added.valid(), added.invalid());
  return 0;
}

int Main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--append-deterministic") {
    return AppendDeterministic(std::string(argv[2]) + "/fields.json");
  }
  if (argc != 2) {
    std::fprintf(stderr,
                 "usage: %s [--append-deterministic] <output directory, e.g. "
                 "tests/vectors/fields_v1>\n",
                 argv[0]);
    return 2;
  }
  Vectors vectors;
  AddValid(vectors);
  AddInvalid(vectors);
  AddDeterministic(vectors);
  const std::string path = std::string(argv[1]) + "/fields.json";
  // Released vectors never change: only a file that does not exist yet is
  // written.
  if (!WriteNew(path, vectors.ToJson().dump(2) + "\n")) {
    std::fprintf(stderr, "%s exists (or cannot be written): left as it is\n", path.c_str());
    return 1;
  }
  std::printf("wrote %s: %d valid, %d invalid vectors\n", path.c_str(), vectors.valid(),
              vectors.invalid());
  return 0;
}

}  // namespace
}  // namespace keyward

int main(int argc, char** argv) { return keyward::Main(argc, argv); }

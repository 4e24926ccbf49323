// Writes the frozen test vectors of the field value format v1
// (docs/format.md §15.5) to <dir>/fields.json:
//   build/release/bin/field_vector_generator tests/vectors/fields_v1
// Run once: the nonces are random (an Aead draws them; callers never choose
// nonces), so every run writes different bytes.  It refuses to overwrite an
// existing file, because released vectors never change; readers only ever
// decrypt them.  The data keys are fixed test patterns, never real keys.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/aead.h"
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

  Json ToJson() const {
    return Json{{"format", "keyward field value v1"},
                {"note",
                 "Frozen (docs/format.md section 15.5). Read each stored text value with "
                 "data_key (AES-256-GCM) at the location dataset, table, column, tenant, "
                 "row_id: it must decrypt to exactly type and payload, or fail with "
                 "expected_error (keyward::ErrorCodeName). key_ref is the key reference "
                 "the value was sealed with."},
                {"vectors", vectors_}};
  }
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
      {0x12, "unsupported-version"},    // version 1, deterministic: reserved
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

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory, e.g. tests/vectors/fields_v1>\n",
                 argv[0]);
    return 2;
  }
  Vectors vectors;
  AddValid(vectors);
  AddInvalid(vectors);
  const std::string path = std::string(argv[1]) + "/fields.json";
  // Released vectors never change: only a file that does not exist yet is
  // written.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "%s exists (or cannot be created): left as it is\n", path.c_str());
    return 1;
  }
  const std::string text = vectors.ToJson().dump(2) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) {
    std::fprintf(stderr, "%s: write failed\n", path.c_str());
    return 1;
  }
  std::printf("wrote %s: %d valid, %d invalid vectors\n", path.c_str(), vectors.valid(),
              vectors.invalid());
  return 0;
}

}  // namespace
}  // namespace keyward

int main(int argc, char** argv) { return keyward::Main(argc, argv); }

#include "fields/index_value.h"

#include <openssl/crypto.h>
#include <utf8proc.h>

#include <charconv>
#include <cstring>
#include <type_traits>
#include <variant>

#include "absl/strings/str_cat.h"
#include "crypto/internal/keyed_hmac_sha256.h"

namespace keyward::fields {
namespace {

// Overwrites the whole buffer, including bytes past size() that earlier,
// longer contents (or a moved-out value) may have left behind.
void WipeString(std::string* s) {
  s->resize(s->capacity());
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

absl::Status NotUtf8(const IndexTransform& t) {
  return absl::InvalidArgumentError(absl::StrCat(
      "the index transform ", IndexTransformName(t),
      " needs valid UTF-8 text, and the value is not; use a bytes index "
      "without character transforms for binary values"));
}

// Decodes the code point at the front of `s`; its length in bytes, or -1
// for invalid UTF-8 (overlong forms, surrogates, values past U+10FFFF).
utf8proc_ssize_t Decode(absl::string_view s, utf8proc_int32_t* cp) {
  return utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                          static_cast<utf8proc_ssize_t>(s.size()), cp);
}

// Unicode's White_Space property (PropList.txt), fixed here so index
// values do not change with the utf8proc version.
bool IsWhiteSpace(utf8proc_int32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Strips white space from both ends.  It decodes only the ends, so bytes
// that are not UTF-8 stop the trimming instead of failing it.
void Trim(absl::string_view in, std::string* out) {
  utf8proc_int32_t cp = 0;
  while (!in.empty()) {
    utf8proc_ssize_t n = Decode(in, &cp);
    if (n <= 0 || !IsWhiteSpace(cp)) break;
    in.remove_prefix(static_cast<size_t>(n));
  }
  while (!in.empty()) {
    // The last code point starts at the last byte that is not 10xxxxxx.
    size_t start = in.size() - 1;
    while (start > 0 && in.size() - start < 4 &&
           (static_cast<unsigned char>(in[start]) & 0xC0) == 0x80) {
      --start;
    }
    absl::string_view last = in.substr(start);
    utf8proc_ssize_t n = Decode(last, &cp);
    if (n != static_cast<utf8proc_ssize_t>(last.size()) || !IsWhiteSpace(cp)) break;
    in.remove_suffix(last.size());
  }
  out->assign(in.data(), in.size());
}

void Digits(absl::string_view in, std::string* out) {
  out->reserve(in.size());  // no partial copy is reallocated and left unwiped
  for (char c : in) {
    if (c >= '0' && c <= '9') out->push_back(c);
  }
}

// Code points of `in`, or false for invalid UTF-8.
bool CountCodePoints(absl::string_view in, size_t* count) {
  utf8proc_int32_t cp = 0;
  *count = 0;
  while (!in.empty()) {
    utf8proc_ssize_t n = Decode(in, &cp);
    if (n <= 0) return false;
    in.remove_prefix(static_cast<size_t>(n));
    ++*count;
  }
  return true;
}

// The code points of `in` from index `from` (counted in code points) on,
// at most `take` of them.  REQUIRES: `in` is valid UTF-8.
void CodePointRange(absl::string_view in, size_t from, size_t take, std::string* out) {
  utf8proc_int32_t cp = 0;
  size_t begin = 0, i = 0, pos = 0;
  for (; pos < in.size() && i < from + take; ++i) {
    if (i == from) begin = pos;
    pos += static_cast<size_t>(Decode(in.substr(pos), &cp));
  }
  if (i <= from) begin = pos;
  out->assign(in.data() + begin, pos - begin);
}

absl::Status Lowercase(const IndexTransform& t, absl::string_view in, std::string* out) {
  // Lowercasing can lengthen a code point from 2 to 3 bytes; reserving
  // enough up front keeps partial copies from being freed unwiped.
  out->reserve(in.size() + in.size() / 2 + 4);
  utf8proc_int32_t cp = 0;
  utf8proc_uint8_t buf[4];
  while (!in.empty()) {
    utf8proc_ssize_t n = Decode(in, &cp);
    if (n <= 0) return NotUtf8(t);
    in.remove_prefix(static_cast<size_t>(n));
    utf8proc_ssize_t m = utf8proc_encode_char(utf8proc_tolower(cp), buf);
    out->append(reinterpret_cast<const char*>(buf), static_cast<size_t>(m));
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  return absl::OkStatus();
}

// A UTF-32 work buffer that is wiped when released.
struct CodePointBuffer {
  std::vector<utf8proc_int32_t> v;
  void Wipe() {
    if (!v.empty()) OPENSSL_cleanse(v.data(), v.size() * sizeof(v[0]));
  }
  ~CodePointBuffer() { Wipe(); }
};

// NFKC through utf8proc's decompose and reencode steps (what utf8proc_NFKC
// does) on a buffer owned here, so that no copy of the text is left
// unwiped.
absl::Status Nfkc(const IndexTransform& t, absl::string_view in, std::string* out) {
  const auto options =
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  const auto* str = reinterpret_cast<const utf8proc_uint8_t*>(in.data());
  const auto len = static_cast<utf8proc_ssize_t>(in.size());
  CodePointBuffer buffer;
  buffer.v.resize(in.size() + 16);
  utf8proc_ssize_t n = 0;
  for (;;) {
    // One more entry than decomposed code points: reencode needs a byte
    // past the input.
    n = utf8proc_decompose(str, len, buffer.v.data(),
                           static_cast<utf8proc_ssize_t>(buffer.v.size() - 1), options);
    if (n < 0) {
      if (n == UTF8PROC_ERROR_INVALIDUTF8) return NotUtf8(t);
      return absl::InternalError(absl::StrCat("NFKC: ", utf8proc_errmsg(n)));
    }
    if (static_cast<size_t>(n) < buffer.v.size()) break;
    buffer.Wipe();
    buffer.v.assign(static_cast<size_t>(n) + 1, 0);
  }
  utf8proc_ssize_t bytes = utf8proc_reencode(buffer.v.data(), n, options);
  if (bytes < 0) return absl::InternalError(absl::StrCat("NFKC: ", utf8proc_errmsg(bytes)));
  out->assign(reinterpret_cast<const char*>(buffer.v.data()), static_cast<size_t>(bytes));
  return absl::OkStatus();
}

absl::Status ApplyOne(const IndexTransform& t, absl::string_view in, std::string* out) {
  using Kind = IndexTransform::Kind;
  switch (t.kind) {
    case Kind::kLowercase:
      return Lowercase(t, in, out);
    case Kind::kTrim:
      Trim(in, out);
      return absl::OkStatus();
    case Kind::kDigits:
      Digits(in, out);
      return absl::OkStatus();
    case Kind::kFirst:
    case Kind::kLast: {
      if (t.n < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("the index transform ", IndexTransformName(t), " needs n >= 1"));
      }
      size_t count = 0;
      if (!CountCodePoints(in, &count)) return NotUtf8(t);
      const size_t n = static_cast<size_t>(t.n);
      const size_t from = t.kind == Kind::kFirst || count <= n ? 0 : count - n;
      CodePointRange(in, from, n, out);
      return absl::OkStatus();
    }
    case Kind::kNfkc:
      return Nfkc(t, in, out);
  }
  return absl::InvalidArgumentError("unknown index transform");
}

}  // namespace

absl::StatusOr<std::string> IndexText(const FieldValue& value) {
  return std::visit(
      [](const auto& v) -> absl::StatusOr<std::string> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return absl::InvalidArgumentError(
              "a NULL value has no index text; its index value is NULL");
        } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) {
          char buf[32];
          auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
          if (ec != std::errc()) return absl::InternalError("number too long to format");
          std::string text(buf, end);
          OPENSSL_cleanse(buf, sizeof(buf));
          return text;
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else if constexpr (std::is_same_v<T, FieldBytes>) {
          return v.bytes;
        } else {
          static_assert(std::is_same_v<T, FieldJson>);
          return v.text;
        }
      },
      value);
}

absl::StatusOr<std::string> ApplyTransforms(const std::vector<IndexTransform>& chain,
                                            std::string text) {
  std::string next;
  for (const IndexTransform& t : chain) {
    absl::Status s = ApplyOne(t, text, &next);
    if (!s.ok()) {
      WipeString(&text);
      WipeString(&next);
      return s;
    }
    text.swap(next);
    WipeString(&next);
  }
  absl::StatusOr<std::string> out(std::move(text));
  WipeString(&text);  // what a short (in-object) string leaves behind
  return out;
}

struct IndexHasher::State {
  std::unique_ptr<crypto::internal::KeyedHmacSha256> mac;
};

absl::StatusOr<std::unique_ptr<IndexHasher>> IndexHasher::New(const SecretData& key,
                                                              int bits) {
  if (key.size() != kIndexKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("a blind index key must be ", kIndexKeySize,
                                                   " bytes, got ", key.size()));
  }
  if (bits < 1 || bits > kMaxIndexBits) {
    return absl::InvalidArgumentError(absl::StrCat("a blind index has 1 to ", kMaxIndexBits,
                                                   " bits, got ", bits));
  }
  auto state = std::make_unique<State>();
  auto mac = crypto::internal::KeyedHmacSha256::New(key);
  if (!mac.ok()) return mac.status();
  state->mac = *std::move(mac);
  std::unique_ptr<IndexHasher> hasher(new IndexHasher(bits));
  hasher->state_ = std::move(state);
  return hasher;
}

IndexHasher::IndexHasher(int bits) : bits_(bits) {}
IndexHasher::~IndexHasher() = default;

uint64_t IndexHasher::Value(const std::vector<absl::string_view>& parts) const {
  auto c = state_->mac->Start();
  for (absl::string_view part : parts) {
    const auto len = static_cast<uint32_t>(part.size());
    const char prefix[4] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                            static_cast<char>(len >> 8), static_cast<char>(len)};
    c.Update(absl::string_view(prefix, sizeof(prefix)));
    c.Update(part);
  }
  crypto::internal::HmacSha256Tag tag = c.Final();
  uint64_t first = 0;
  for (int i = 0; i < 8; ++i) first = (first << 8) | tag[static_cast<size_t>(i)];
  OPENSSL_cleanse(tag.data(), tag.size());
  return first >> (64 - bits_);
}

}  // namespace keyward::fields

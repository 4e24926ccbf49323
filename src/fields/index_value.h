// Blind index values: a field's value as canonical text, its transform
// chain (keyward/field_schema.h, IndexTransform), and a keyed MAC of the
// result truncated to the index's bits (docs/fields.md, "Blind indexes";
// docs/format.md, "Blind index values").
//
//   text    = IndexText(value)          integers in decimal, reals in the
//                                       shortest form that round-trips,
//                                       text and JSON as they are, bytes raw
//   part    = ApplyTransforms(chain, text)
//   mac     = HMAC-SHA-256(index key, u32be(len(part_1)) || part_1 || ...)
//   value   = first 8 bytes of mac, big-endian, >> (64 - bits)
//
// Thread-safety: IndexHasher is immutable after New; share it freely.
#ifndef KEYWARD_FIELDS_INDEX_VALUE_H_
#define KEYWARD_FIELDS_INDEX_VALUE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/field_encryptor.h"
#include "keyward/field_schema.h"
#include "keyward/secret_data.h"

namespace keyward::fields {

inline constexpr size_t kIndexKeySize = 32;

// The value's canonical text for indexing.  Errors: kInvalidArgument for
// NULL (a NULL value has a NULL index value; callers skip it).  The text is
// a copy of the plaintext: hand it to ApplyTransforms, which wipes it.
absl::StatusOr<std::string> IndexText(const FieldValue& value);

// Applies `chain` in order.  Errors: kInvalidArgument when a step that
// reads characters (lowercase, normalize:NFKC, first:N, last:N) meets text
// that is not valid UTF-8.  The input and any intermediate copies are
// wiped.
absl::StatusOr<std::string> ApplyTransforms(const std::vector<IndexTransform>& chain,
                                            std::string text);

class IndexHasher {
 public:
  // Errors: kInvalidArgument unless key.size() == kIndexKeySize and
  // 1 <= bits <= kMaxIndexBits.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<IndexHasher>> New(const SecretData& key,
                                                                        int bits);
  ~IndexHasher();
  // The index value of already transformed parts (one per column of the
  // index, in the index's column order): below 2^bits.  The MAC's state and
  // tag are wiped before returning.  REQUIRES: each part is under 4 GiB.
  uint64_t Value(const std::vector<absl::string_view>& parts) const;
  int bits() const { return bits_; }

 private:
  explicit IndexHasher(int bits);  // out of line: State is incomplete here
  struct State;
  std::unique_ptr<State> state_;  // the keyed MAC, ready to copy
  const int bits_;
};

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_INDEX_VALUE_H_

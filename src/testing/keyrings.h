// A list of keyrings seen in both roles, for tests that encrypt and decrypt
// with the same keys: converts to the wrapper and the unwrapper spans the
// message functions take.
#ifndef KEYWARD_TESTING_KEYRINGS_H_
#define KEYWARD_TESTING_KEYRINGS_H_

#include <initializer_list>
#include <vector>

#include "absl/types/span.h"
#include "keyward/keyring.h"

namespace keyward::testing {

class Keyrings {
 public:
  Keyrings() = default;
  Keyrings(std::initializer_list<const Keyring*> keyrings) {
    for (const Keyring* k : keyrings) push_back(k);
  }
  void push_back(const Keyring* k) {
    wrappers_.push_back(k);
    unwrappers_.push_back(k);
  }
  size_t size() const { return wrappers_.size(); }
  operator absl::Span<const KeyWrapper* const>() const { return wrappers_; }
  operator absl::Span<const KeyUnwrapper* const>() const { return unwrappers_; }

 private:
  std::vector<const KeyWrapper*> wrappers_;
  std::vector<const KeyUnwrapper*> unwrappers_;
};

}  // namespace keyward::testing

#endif  // KEYWARD_TESTING_KEYRINGS_H_

#include "format/stream_fuzz_seeds.h"

namespace keyward::format::testing {

const std::vector<std::string>& StreamFuzzSeedPlaintexts() {
  static const std::vector<std::string>* plaintexts = [] {
    auto* out = new std::vector<std::string>();
    for (size_t length : {0, 10, 64, 200}) {
      std::string p(length, '\0');
      for (size_t i = 0; i < length; ++i) p[i] = static_cast<char>(7 + 131 * i);
      out->push_back(std::move(p));
    }
    return out;
  }();
  return *plaintexts;
}

}  // namespace keyward::format::testing

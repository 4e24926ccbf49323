#include "base/bounded.h"

#include "absl/strings/str_cat.h"

namespace keyward {

std::string Bounded(absl::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (s.size() > max) absl::StrAppend(&out, "...(", s.size(), " bytes)");
  return out;
}

}  // namespace keyward

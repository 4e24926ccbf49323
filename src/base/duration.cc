#include "base/duration.h"

#include <cctype>

#include "absl/strings/str_cat.h"

namespace keyward {

absl::StatusOr<absl::Duration> ParseHumanDuration(absl::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a duration; use a number with d, h, m, s or ms, "
                   "for example 90d, 24h, 15m, 1d12h or 500ms"));
  };
  if (text == "0") return absl::ZeroDuration();
  if (text.empty()) return bad();
  absl::Duration total = absl::ZeroDuration();
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    size_t digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (n > (int64_t{1} << 40)) return bad();
      n = n * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || i == text.size()) return bad();
    switch (text[i++]) {
      case 'd': total += absl::Hours(24 * n); break;
      case 'h': total += absl::Hours(n); break;
      case 'm':
        if (i < text.size() && text[i] == 's') {
          ++i;
          total += absl::Milliseconds(n);
        } else {
          total += absl::Minutes(n);
        }
        break;
      case 's': total += absl::Seconds(n); break;
      default: return bad();
    }
  }
  return total;
}

std::string FormatHumanDuration(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return "0";
  int64_t s = absl::ToInt64Seconds(d);
  std::string out;
  for (auto [unit, size] : {std::pair{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}}) {
    if (s >= size) {
      absl::StrAppend(&out, s / size, std::string(1, unit));
      s %= size;
    }
  }
  return out;
}

}  // namespace keyward

#include "classify/detectors.h"

#include <array>
#include <cmath>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace keyward::classify {
namespace {

constexpr char kDots[] = "•••";

bool IsDigit(char c) {
  return absl::ascii_isdigit(static_cast<unsigned char>(c));
}
bool IsAlpha(char c) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c));
}
bool IsAlnum(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c));
}
bool IsUpperAlnum(char c) {
  return IsDigit(c) || absl::ascii_isupper(static_cast<unsigned char>(c));
}
bool IsBase64Url(char c) { return IsAlnum(c) || c == '-' || c == '_'; }

template <typename Pred>
bool All(absl::string_view s, Pred pred) {
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

// The number formed by the first n digits (n <= digits.size()).
int Prefix(absl::string_view digits, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n && i < digits.size(); ++i)
    v = v * 10 + (digits[i] - '0');
  return v;
}

// Digits of `value` when it is digit groups joined by single spaces or
// dashes; empty otherwise.
std::string GroupedDigits(absl::string_view value) {
  std::string digits;
  char previous = ' ';
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (IsDigit(c)) {
      digits.push_back(c);
    } else if ((c == ' ' || c == '-') && i > 0 && IsDigit(previous)) {
      // a separator between two digits only
    } else {
      return "";
    }
    previous = c;
  }
  return IsDigit(previous) ? digits : "";
}

// IBAN lengths of the countries most databases hold (SWIFT IBAN registry).
int IbanLength(absl::string_view country) {
  static constexpr std::pair<const char*, int> kLengths[] = {
      {"AD", 24}, {"AE", 23}, {"AT", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22},
      {"BR", 29}, {"CH", 21}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18},
      {"EE", 20}, {"ES", 24}, {"FI", 18}, {"FR", 27}, {"GB", 22}, {"GI", 23},
      {"GR", 27}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IS", 26},
      {"IT", 27}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27},
      {"MT", 31}, {"NL", 18}, {"NO", 15}, {"PL", 28}, {"PT", 25}, {"RO", 24},
      {"SA", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"TR", 26},
      {"UA", 29}};
  for (const auto& [code, length] : kLengths) {
    if (country == code) return length;
  }
  return 0;
}

bool Mod97IsOne(absl::string_view iban) {
  int remainder = 0;
  auto feed = [&](char c) {
    if (IsDigit(c)) {
      remainder = (remainder * 10 + (c - '0')) % 97;
    } else {
      remainder = (remainder * 100 + (c - 'A' + 10)) % 97;
    }
  };
  for (char c : iban.substr(4)) feed(c);
  for (char c : iban.substr(0, 4)) feed(c);
  return remainder == 1;
}

bool IsEmailLocalChar(char c) {
  return IsAlnum(c) || absl::StrContains("!#$%&'*+/=?^_`{|}~-.", c);
}

bool IsVendorSecret(absl::string_view v) {
  auto rest_is = [&](absl::string_view prefix, size_t min, size_t max,
                     auto pred) {
    if (!absl::StartsWith(v, prefix)) return false;
    absl::string_view rest = v.substr(prefix.size());
    return rest.size() >= min && rest.size() <= max && All(rest, pred);
  };
  for (absl::string_view p : {"sk_live_", "sk_test_", "rk_live_", "rk_test_"}) {
    if (rest_is(p, 16, 247, IsAlnum)) return true;
  }
  for (absl::string_view p : {"AKIA", "ASIA"}) {
    if (rest_is(p, 16, 16, IsUpperAlnum)) return true;
  }
  for (absl::string_view p : {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}) {
    if (rest_is(p, 36, 251, IsAlnum)) return true;
  }
  if (rest_is("github_pat_", 22, 244,
              [](char c) { return IsAlnum(c) || c == '_'; }))
    return true;
  for (absl::string_view p : {"xoxa-", "xoxb-", "xoxp-"}) {
    if (rest_is(p, 10, 250, [](char c) { return IsAlnum(c) || c == '-'; }))
      return true;
  }
  if (rest_is("glpat-", 20, 20, IsBase64Url)) return true;
  return rest_is("AIza", 35, 35, IsBase64Url);
}

// A random-looking token: what a generated secret looks like, and what
// identifiers, words and paths do not.
bool IsHighEntropyToken(absl::string_view v) {
  if (v.size() < 32 || v.size() > 100) return false;
  size_t upper = 0, lower = 0, digits = 0, slashes = 0;
  absl::string_view body = absl::StripSuffix(absl::StripSuffix(v, "="), "=");
  for (char c : body) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      ++upper;
    } else if (absl::ascii_islower(static_cast<unsigned char>(c))) {
      ++lower;
    } else if (IsDigit(c)) {
      ++digits;
    } else if (c == '/') {
      ++slashes;
    } else if (c != '+' && c != '-' && c != '_') {
      return false;
    }
  }
  if (slashes > 2) return false;  // a path, not a token
  const double entropy = ShannonEntropy(body);
  const bool hex = All(body, [](char c) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(c));
  });
  if (hex && (upper == 0 || lower == 0)) {
    // Hex of one case: 16 symbols, at most 4 bits per character.
    return digits >= 4 && upper + lower >= 4 && entropy >= 3.3;
  }
  // Base64 of a random secret mixes cases and digits; words and
  // camelCase identifiers rarely hold several digits.
  return upper >= 2 && lower >= 2 && digits >= 2 && entropy >= 4.2;
}

}  // namespace

absl::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kJwt:
      return "jwt";
    case Kind::kApiKey:
      return "api-key";
    case Kind::kEmail:
      return "email";
    case Kind::kIban:
      return "iban";
    case Kind::kCard:
      return "card";
    case Kind::kSsn:
      return "ssn";
    case Kind::kPhone:
      return "phone";
  }
  return "unknown";
}

absl::string_view ClassOf(Kind kind) {
  switch (kind) {
    case Kind::kCard:
      return "pci";
    case Kind::kJwt:
    case Kind::kApiKey:
      return "secret";
    default:
      return "pii";
  }
}

absl::string_view KindDescription(Kind kind) {
  switch (kind) {
    case Kind::kJwt:
      return "JWTs";
    case Kind::kApiKey:
      return "API keys or secrets";
    case Kind::kEmail:
      return "email addresses";
    case Kind::kIban:
      return "IBANs";
    case Kind::kCard:
      return "card numbers";
    case Kind::kSsn:
      return "US SSNs";
    case Kind::kPhone:
      return "phone numbers";
  }
  return "values";
}

bool LuhnValid(absl::string_view digits) {
  if (digits.empty() || !All(digits, IsDigit)) return false;
  int sum = 0;
  bool twice = false;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

bool KnownCardIssuer(absl::string_view d) {
  const size_t n = d.size();
  if (n < 13 || n > 19 || !All(d, IsDigit)) return false;
  const int p2 = Prefix(d, 2), p3 = Prefix(d, 3), p4 = Prefix(d, 4);
  if (d[0] == '4') return n == 13 || n == 16 || n == 19;  // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
    return n == 16;                          // Mastercard
  if (p2 == 34 || p2 == 37) return n == 15;  // Amex
  if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649))
    return n >= 16;                              // Discover
  if (p4 >= 3528 && p4 <= 3589) return n >= 16;  // JCB
  if (p2 == 36 || p2 == 38 || (p3 >= 300 && p3 <= 305))
    return n >= 14;  // Diners
  return false;
}

bool IsCardNumber(absl::string_view value) {
  const std::string digits = GroupedDigits(absl::StripAsciiWhitespace(value));
  return KnownCardIssuer(digits) && LuhnValid(digits);
}

bool IsEmail(absl::string_view value) {
  const absl::string_view v = absl::StripAsciiWhitespace(value);
  const size_t at = v.find('@');
  if (v.size() > 254 || at == absl::string_view::npos || v.rfind('@') != at)
    return false;
  const absl::string_view local = v.substr(0, at), domain = v.substr(at + 1);
  if (local.empty() || local.size() > 64 || !All(local, IsEmailLocalChar) ||
      local.front() == '.' || local.back() == '.' ||
      absl::StrContains(local, "..")) {
    return false;
  }
  const std::vector<absl::string_view> labels = absl::StrSplit(domain, '.');
  if (labels.size() < 2) return false;
  for (absl::string_view label : labels) {
    if (label.empty() || label.size() > 63 || label.front() == '-' ||
        label.back() == '-' ||
        !All(label, [](char c) { return IsAlnum(c) || c == '-'; })) {
      return false;
    }
  }
  return labels.back().size() >= 2 && All(labels.back(), IsAlpha);
}

bool IsIban(absl::string_view value) {
  std::string s;
  for (char c : absl::StripAsciiWhitespace(value)) {
    if (c != ' ')
      s.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  if (s.size() < 15 || s.size() > 34 || !IsAlpha(s[0]) || !IsAlpha(s[1]) ||
      !IsDigit(s[2]) || !IsDigit(s[3]) || !All(s, IsAlnum)) {
    return false;
  }
  const int length = IbanLength(absl::string_view(s).substr(0, 2));
  if (length != 0 && static_cast<size_t>(length) != s.size()) return false;
  return Mod97IsOne(s);
}

bool IsPhoneNumber(absl::string_view value) {
  const absl::string_view v = absl::StripAsciiWhitespace(value);
  if (v.empty()) return false;
  const bool international = v.front() == '+';
  std::vector<std::string> groups(1);
  bool separated = false;
  int open = 0;
  for (char c : international ? v.substr(1) : v) {
    if (IsDigit(c)) {
      groups.back().push_back(c);
      continue;
    }
    if (c == '(') {
      if (open++ > 0) return false;
    } else if (c == ')') {
      if (open-- != 1) return false;
    } else if (c != ' ' && c != '-' && c != '.') {
      return false;
    }
    separated = true;
    if (!groups.back().empty()) groups.emplace_back();
  }
  if (open != 0 || !IsDigit(v.back())) return false;
  size_t digits = 0;
  for (const std::string& g : groups) digits += g.size();
  if (international)
    return digits >= 8 && digits <= 15 && groups.front()[0] != '0';
  if (!separated || digits < 10 || digits > 15 || groups.size() < 2)
    return false;
  for (const std::string& g : groups) {
    if (g.size() > 8) return false;  // 3.14159265358979
  }
  // 1234.567890 is a decimal number; dotted phone numbers have 3+ groups.
  if (v.find_first_of(" -()") == absl::string_view::npos && groups.size() < 3)
    return false;
  // 1 234 567 890 or 192.168.100.200: thousands or an address, not a phone.
  bool all_threes = true;
  for (size_t i = 1; i < groups.size(); ++i)
    all_threes = all_threes && groups[i].size() == 3;
  return !all_threes;
}

bool IsSsn(absl::string_view value) {
  const absl::string_view v = absl::StripAsciiWhitespace(value);
  if (v.size() != 11 || v[3] != '-' || v[6] != '-') return false;
  const std::string digits =
      absl::StrCat(v.substr(0, 3), v.substr(4, 2), v.substr(7, 4));
  if (!All(digits, IsDigit)) return false;
  const int area = Prefix(digits, 3);
  const int group = Prefix(absl::string_view(digits).substr(3), 2);
  const int serial = Prefix(absl::string_view(digits).substr(5), 4);
  // 078-05-1120 and 219-09-9999 were printed on sample cards and ads.
  if (v == "078-05-1120" || v == "219-09-9999") return false;
  return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

bool IsJwt(absl::string_view value) {
  const absl::string_view v = absl::StripAsciiWhitespace(value);
  const std::vector<absl::string_view> parts = absl::StrSplit(v, '.');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) return false;
  for (absl::string_view part : parts) {
    if (!All(part, IsBase64Url)) return false;
  }
  // A JSON object starts with '{', which base64url-encodes as "ey".
  if (!absl::StartsWith(parts[0], "ey")) return false;
  std::string header;
  if (!absl::WebSafeBase64Unescape(parts[0], &header)) return false;
  const auto json =
      nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  return json.is_object() && json.contains("alg");
}

bool IsApiKey(absl::string_view value) {
  const absl::string_view v = absl::StripAsciiWhitespace(value);
  if (absl::StartsWith(v, "-----BEGIN ") &&
      absl::StrContains(v, "PRIVATE KEY-----"))
    return true;
  return IsVendorSecret(v) || IsHighEntropyToken(v);
}

double ShannonEntropy(absl::string_view value) {
  if (value.empty()) return 0;
  std::array<size_t, 256> counts{};
  for (char c : value) ++counts[static_cast<unsigned char>(c)];
  double bits = 0;
  const double n = static_cast<double>(value.size());
  for (size_t count : counts) {
    if (count == 0) continue;
    const double p = static_cast<double>(count) / n;
    bits -= p * std::log2(p);
  }
  return bits;
}

std::optional<Kind> Detect(absl::string_view value) {
  if (value.size() > 4096) return std::nullopt;  // documents, not values
  for (Kind kind : kAllKinds) {
    bool match = false;
    switch (kind) {
      case Kind::kJwt:
        match = IsJwt(value);
        break;
      case Kind::kApiKey:
        match = IsApiKey(value);
        break;
      case Kind::kEmail:
        match = IsEmail(value);
        break;
      case Kind::kIban:
        match = IsIban(value);
        break;
      case Kind::kCard:
        match = IsCardNumber(value);
        break;
      case Kind::kSsn:
        match = IsSsn(value);
        break;
      case Kind::kPhone:
        match = IsPhoneNumber(value);
        break;
    }
    if (match) return kind;
  }
  return std::nullopt;
}

bool IsKeywardCiphertext(absl::string_view value, bool binary) {
  return absl::StartsWith(value, "kw1.") || absl::StartsWith(value, "KWRD") ||
         (binary && !value.empty() && value[0] == '\x11');
}

std::string Mask(Kind kind, absl::string_view value) {
  const absl::string_view v = absl::StripAsciiWhitespace(value);
  if (kind == Kind::kCard) {
    std::string digits;
    for (char c : v) {
      if (IsDigit(c)) digits.push_back(c);
    }
    if (digits.size() >= 13) {
      return absl::StrCat("•••• •••• •••• ", digits.substr(digits.size() - 4));
    }
  }
  if (kind == Kind::kEmail) {
    const size_t at = v.find('@');
    if (at != absl::string_view::npos && at > 0) {
      return absl::StrCat(v.substr(0, 1), kDots, v.substr(at));
    }
  }
  if (v.size() < 8) return kDots;
  return absl::StrCat(v.substr(0, 2), kDots, v.substr(v.size() - 2));
}

}  // namespace keyward::classify

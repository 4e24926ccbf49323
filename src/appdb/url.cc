#include "appdb/url.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace keyward::appdb {
namespace {

struct UrlParts {
  absl::string_view before_userinfo;  // "postgresql://"
  absl::string_view user;             // "" when no user info
  absl::string_view password;         // "" when none
  bool has_userinfo = false;
  absl::string_view after_userinfo;  // "host:port/db"
  absl::string_view query;           // after '?', without it
  bool has_query = false;
};

UrlParts Split(absl::string_view url) {
  UrlParts p;
  const size_t scheme_end = url.find("://");
  const size_t authority =
      scheme_end == absl::string_view::npos ? 0 : scheme_end + 3;
  p.before_userinfo = url.substr(0, authority);
  absl::string_view rest = url.substr(authority);
  const size_t q = rest.find('?');
  if (q != absl::string_view::npos) {
    p.query = rest.substr(q + 1);
    p.has_query = true;
    rest = rest.substr(0, q);
  }
  // The user info ends at the last '@' before the path.
  const size_t path = rest.find('/');
  const size_t at = rest.substr(0, path).rfind('@');
  if (scheme_end != absl::string_view::npos && at != absl::string_view::npos) {
    p.has_userinfo = true;
    absl::string_view userinfo = rest.substr(0, at);
    const size_t colon = userinfo.find(':');
    p.user = userinfo.substr(0, colon);
    if (colon != absl::string_view::npos)
      p.password = userinfo.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  p.after_userinfo = rest;
  return p;
}

bool IsPasswordParam(absl::string_view param) {
  return absl::StartsWithIgnoreCase(param, "password=");
}

}  // namespace

std::string RedactUrlPassword(absl::string_view url) {
  const UrlParts p = Split(url);
  std::string out(p.before_userinfo);
  if (p.has_userinfo) {
    absl::StrAppend(&out, p.user);
    out.push_back('@');
  }
  absl::StrAppend(&out, p.after_userinfo);
  if (p.has_query) {
    std::vector<absl::string_view> kept;
    for (absl::string_view param : absl::StrSplit(p.query, '&')) {
      if (!IsPasswordParam(param)) kept.push_back(param);
    }
    if (!kept.empty()) {
      out.push_back('?');
      out.append(absl::StrJoin(kept, "&"));
    }
  }
  return out;
}

std::string UrlPassword(absl::string_view url) {
  const UrlParts p = Split(url);
  if (!p.password.empty()) return std::string(p.password);
  for (absl::string_view param : absl::StrSplit(p.query, '&')) {
    if (IsPasswordParam(param)) return std::string(param.substr(9));
  }
  return "";
}

std::string ScrubSecret(std::string message, absl::string_view secret) {
  if (secret.empty()) return message;
  absl::StrReplaceAll({{secret, "***"}}, &message);
  return message;
}

}  // namespace keyward::appdb

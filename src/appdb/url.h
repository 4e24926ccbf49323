// Passwords in database URLs: what reports show instead of the URL, and what
// error messages must never contain.
#ifndef KEYWARD_APPDB_URL_H_
#define KEYWARD_APPDB_URL_H_

#include <string>

#include "absl/strings/string_view.h"

namespace keyward::appdb {

// `url` without the password of its user info (`user:pw@` → `user@`) and
// without any `password=` query parameter.  Other text is kept as is.
std::string RedactUrlPassword(absl::string_view url);

// The password `url` carries (user info or `password=` parameter), as
// written in the URL; empty when there is none.
std::string UrlPassword(absl::string_view url);

// `message` with every occurrence of `secret` replaced by "***" (a no-op for
// an empty secret): for errors from a library that may echo its input.
std::string ScrubSecret(std::string message, absl::string_view secret);

}  // namespace keyward::appdb

#endif  // KEYWARD_APPDB_URL_H_

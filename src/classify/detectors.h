// Detectors for sensitive values stored in the clear, for
// `keyward classify scan` (docs/classify.md).  Pure functions over one
// value each; thread-safe.
//
// Each detector decides whether a WHOLE value (surrounding whitespace
// ignored) is such a thing: a card number inside a sentence is not found.
// They lean towards missing a value rather than flagging an ordinary one,
// because the scanner reports a column only when enough of its sample
// matches.
#ifndef KEYWARD_CLASSIFY_DETECTORS_H_
#define KEYWARD_CLASSIFY_DETECTORS_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace keyward::classify {

// In the order Detect() tries them.
enum class Kind { kJwt, kApiKey, kEmail, kIban, kCard, kSsn, kPhone };
inline constexpr Kind kAllKinds[] = {Kind::kJwt,  Kind::kApiKey, Kind::kEmail,
                                     Kind::kIban, Kind::kCard,   Kind::kSsn,
                                     Kind::kPhone};

// "jwt", "api-key", "email", "iban", "card", "ssn", "phone".
absl::string_view KindName(Kind kind);
// The data class a field schema gives it: "pci" (card), "pii" (email,
// phone, iban, ssn) or "secret" (jwt, api-key).
absl::string_view ClassOf(Kind kind);
// "card numbers", "email addresses", … for reports.
absl::string_view KindDescription(Kind kind);

// The Luhn (mod 10) check over a string of ASCII digits; false for an empty
// string or any other character.
bool LuhnValid(absl::string_view digits);
// Whether the digits start with an issuer range of Visa, Mastercard, Amex,
// Discover, JCB or Diners Club and have a length that issuer uses.
bool KnownCardIssuer(absl::string_view digits);

// A payment card number: 13-19 digits, optionally grouped by single spaces
// or dashes, a known issuer range and length, and a valid Luhn check digit.
bool IsCardNumber(absl::string_view value);
// An email address: a pragmatic subset of RFC 5322 (dot-atom local part,
// a domain of at least two labels with an alphabetic top-level label).
bool IsEmail(absl::string_view value);
// An IBAN: country code, check digits, mod-97 = 1, the country's length for
// common countries (15-34 otherwise); spaces between groups allowed.
bool IsIban(absl::string_view value);
// A phone number: E.164 (`+` and 8-15 digits, separators allowed) or a
// national number of 10-15 digits written with separators or parentheses.
// A bare run of digits is never a phone number here.
bool IsPhoneNumber(absl::string_view value);
// A US Social Security number written AAA-GG-SSSS, outside the ranges the
// SSA never issues (area 000, 666, 9xx; group 00; serial 0000).
bool IsSsn(absl::string_view value);
// A JSON Web Token: three base64url parts whose first decodes to a JSON
// object with an "alg" member.
bool IsJwt(absl::string_view value);
// An API key or similar secret: a well-known vendor prefix (sk_live_,
// AKIA…, ghp_, xoxb-, AIza, …) or a 32-100 character token of base64/hex
// characters with high Shannon entropy.
bool IsApiKey(absl::string_view value);

// Shannon entropy of the byte distribution, in bits per character.
double ShannonEntropy(absl::string_view value);

// The first kind whose detector accepts `value`, in kAllKinds order.
std::optional<Kind> Detect(absl::string_view value);

// Whether a value is already Keyward ciphertext: a field value in text form
// (`kw1.` + base64url), a binary field value (first byte 0x11, only when
// `binary`, i.e. from a BLOB/BYTEA column) or a Keyward message ("KWRD").
bool IsKeywardCiphertext(absl::string_view value, bool binary);

// `value` masked for a report, never in full: a card shows its last four
// digits ("•••• •••• •••• 1111"), an email its first character and domain
// ("j•••@example.com"), anything else its first and last two characters
// ("ey•••J9"), or only "•••" when shorter than 8 characters.
std::string Mask(Kind kind, absl::string_view value);

}  // namespace keyward::classify

#endif  // KEYWARD_CLASSIFY_DETECTORS_H_

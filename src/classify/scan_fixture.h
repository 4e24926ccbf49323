// A fixture database for scanner tests: sensitive values planted in known
// columns beside look-alikes that must not be reported.
//
//   customers(id PK, card, email, order_ref, notes, visits, ssn_enc,
//             card_enc)
//     card      Luhn-valid Visa numbers, some grouped by spaces or dashes
//     email     addresses
//     order_ref 16 random digits whose Luhn check FAILS (no finding)
//     notes     ordinary prose (no finding)
//     visits    integers (no finding)
//     ssn_enc   Keyward field values, `kw1.` + base64url (encrypted)
//     card_enc  binary Keyward field values, 0x11 + bytes (encrypted)
//   sessions(token, user_agent)  no primary key
//     token     JWTs
#ifndef KEYWARD_CLASSIFY_SCAN_FIXTURE_H_
#define KEYWARD_CLASSIFY_SCAN_FIXTURE_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "appdb/database.h"
#include "base/status_macros.h"
#include "classify/detectors.h"

namespace keyward::classify::testing {

struct PlantedValues {
  std::vector<std::string> cards, emails, order_refs, tokens;
  // Everything a report must never show in full.
  std::vector<std::string> All() const {
    std::vector<std::string> all = cards;
    all.insert(all.end(), emails.begin(), emails.end());
    all.insert(all.end(), tokens.begin(), tokens.end());
    return all;
  }
};

inline std::string RandomDigits(std::mt19937_64& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('0' + rng() % 10));
  return s;
}

// The check digit that makes `body` + digit pass Luhn.
inline char LuhnCheckDigit(const std::string& body) {
  for (char d = '0'; d <= '9'; ++d) {
    if (LuhnValid(body + d)) return d;
  }
  return '0';
}

inline absl::StatusOr<PlantedValues> BuildScanFixture(appdb::Database& db,
                                                      int rows,
                                                      uint64_t seed = 42) {
  std::mt19937_64 rng(seed);
  PlantedValues planted;
  KW_RETURN_IF_ERROR(
      db
          .Execute(absl::StrCat(
              "CREATE TABLE customers (id INTEGER PRIMARY KEY, card TEXT, "
              "email TEXT, order_ref TEXT, notes TEXT, visits INTEGER, "
              "ssn_enc TEXT, card_enc ",
              db.BlobType(), ")"))
          .status());
  KW_RETURN_IF_ERROR(
      db.Execute("CREATE TABLE sessions (token TEXT, user_agent TEXT)")
          .status());
  const char* prose[] = {
      "Called about the delivery; will ring back on Tuesday.",
      "Prefers email over phone. Renewal due in March.",
      "Asked for the 2023 invoice again, sent 3 copies.",
      "VIP since 2019, no complaints so far",
      "Moved to the new office at 42 Harbour Street.",
  };
  KW_RETURN_IF_ERROR(db.Begin());
  for (int i = 0; i < rows; ++i) {
    std::string card = "4" + RandomDigits(rng, 14);
    card.push_back(LuhnCheckDigit(card));
    planted.cards.push_back(card);
    if (i % 3 == 1)
      card = absl::StrCat(card.substr(0, 4), " ", card.substr(4, 4), " ",
                          card.substr(8, 4), " ", card.substr(12));
    if (i % 3 == 2)
      card = absl::StrCat(card.substr(0, 4), "-", card.substr(4, 4), "-",
                          card.substr(8, 4), "-", card.substr(12));
    std::string email =
        absl::StrCat("customer.", i, "+", rng() % 1000, "@mail.example.com");
    planted.emails.push_back(email);
    std::string ref = RandomDigits(rng, 15);
    ref.push_back(
        static_cast<char>('0' + (LuhnCheckDigit(ref) - '0' + 1) % 10));
    planted.order_refs.push_back(ref);
    std::string ssn_cipher;
    for (int b = 0; b < 48; ++b) ssn_cipher.push_back(static_cast<char>(rng()));
    KW_RETURN_IF_ERROR(
        db.Execute("INSERT INTO customers (id, card, email, order_ref, notes, "
                   "visits, ssn_enc, card_enc) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                   {int64_t{i + 1}, card, email, ref, std::string(prose[i % 5]),
                    int64_t{i * 7 % 50},
                    "kw1." + absl::WebSafeBase64Escape(ssn_cipher),
                    appdb::Blob{"\x11" + ssn_cipher}})
            .status());
    const std::string claims =
        absl::StrCat(R"({"sub":"user-)", i, R"(","iat":)", 1700000000 + i, "}");
    std::string signature;
    for (int b = 0; b < 32; ++b) signature.push_back(static_cast<char>(rng()));
    const std::string token = absl::StrCat(
        absl::WebSafeBase64Escape(R"({"alg":"HS256","typ":"JWT"})"), ".",
        absl::WebSafeBase64Escape(claims), ".",
        absl::WebSafeBase64Escape(signature));
    planted.tokens.push_back(token);
    KW_RETURN_IF_ERROR(
        db.Execute("INSERT INTO sessions (token, user_agent) VALUES ($1, $2)",
                   {token, std::string("Mozilla/5.0 (X11; Linux x86_64)")})
            .status());
  }
  KW_RETURN_IF_ERROR(db.Commit());
  return planted;
}

}  // namespace keyward::classify::testing

#endif  // KEYWARD_CLASSIFY_SCAN_FIXTURE_H_

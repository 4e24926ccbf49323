// Loading Project Wycheproof vectors and tallying results for the
// `wycheproof <file>: <N> passed, <M> skipped` line release tooling reads.
#ifndef KEYWARD_TESTING_WYCHEPROOF_H_
#define KEYWARD_TESTING_WYCHEPROOF_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace keyward::testing {

// Directory holding the vectors: $KEYWARD_WYCHEPROOF_DIR, else
// ../shared/testvectors/wycheproof relative to the repository root (tests
// run from the root).
std::string WycheproofDir();

// Parses one vector file.  Errors: kNotFound with a message that says where
// the vectors were looked for and how to point at them.
absl::StatusOr<nlohmann::json> LoadWycheproof(absl::string_view file_name);

// Decodes lowercase hex.  Aborts the test binary on malformed hex, which can
// only mean a corrupt vector file.
std::string HexDecode(absl::string_view hex);
std::string HexEncode(absl::string_view bytes);

class WycheproofTally {
 public:
  explicit WycheproofTally(std::string file) : file_(std::move(file)) {}
  void Pass() { ++passed_; }
  void Skip(const std::string& reason) { ++skipped_[reason]; }
  int passed() const { return passed_; }
  int skipped() const;
  // Prints the tooling line, then one indented line per skip reason.
  void Print() const;

 private:
  std::string file_;
  int passed_ = 0;
  std::map<std::string, int> skipped_;
};

}  // namespace keyward::testing

#endif  // KEYWARD_TESTING_WYCHEPROOF_H_

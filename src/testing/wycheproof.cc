#include "testing/wycheproof.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace keyward::testing {

std::string WycheproofDir() {
  if (const char* dir = std::getenv("KEYWARD_WYCHEPROOF_DIR")) return dir;
  return "../shared/testvectors/wycheproof";
}

absl::StatusOr<nlohmann::json> LoadWycheproof(absl::string_view file_name) {
  std::string path = absl::StrCat(WycheproofDir(), "/", file_name);
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "Wycheproof vectors not found at ", path,
        " (relative to the repository root). CI places shared/ beside the "
        "checkout; elsewhere set KEYWARD_WYCHEPROOF_DIR to the directory "
        "holding ", file_name, "."));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(buffer.str(), nullptr, false);
  if (json.is_discarded()) {
    return absl::DataLossError(absl::StrCat(path, " is not valid JSON"));
  }
  return json;
}

std::string HexDecode(absl::string_view hex) {
  if (hex.size() % 2 != 0) {
    std::fprintf(stderr, "malformed hex in vector file\n");
    std::abort();
  }
  for (char c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      std::fprintf(stderr, "malformed hex in vector file\n");
      std::abort();
    }
  }
  return absl::HexStringToBytes(hex);
}

std::string HexEncode(absl::string_view bytes) {
  return absl::BytesToHexString(bytes);
}

int WycheproofTally::skipped() const {
  int total = 0;
  for (const auto& [reason, count] : skipped_) total += count;
  return total;
}

void WycheproofTally::Print() const {
  std::printf("wycheproof %s: %d passed, %d skipped\n", file_.c_str(), passed_,
              skipped());
  for (const auto& [reason, count] : skipped_) {
    std::printf("  skipped %d: %s\n", count, reason.c_str());
  }
  std::fflush(stdout);
}

}  // namespace keyward::testing

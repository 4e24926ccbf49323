#include "audit/testing/forgery.h"

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "audit/merkle.h"
#include "base/status_macros.h"
#include "crypto/signature.h"
#include "testing/software_root_of_trust.h"
#include "nlohmann/json.hpp"

namespace keyward::audit::testing {
namespace {

absl::Status Write(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  return out ? absl::OkStatus() : absl::UnavailableError(absl::StrCat("cannot write ", path));
}

}  // namespace

absl::Status RewriteAndResign(const std::string& dir, std::vector<std::string> lines,
                              const std::string& environment) {
  Hash prev{};
  MerkleTree tree;
  std::string records;
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t seq_end = lines[i].find(",\"prev\"");
    const size_t prev_at = lines[i].find("\"prev\":\"");
    if (seq_end == std::string::npos || prev_at == std::string::npos) {
      return absl::InvalidArgumentError("not an audit record");
    }
    lines[i] = absl::StrCat("{\"seq\":", i, lines[i].substr(seq_end));
    lines[i].replace(lines[i].find("\"prev\":\"") + 8, 64, ToHex(prev));
    prev = LeafHash(lines[i]);
    tree.Append(prev);
    absl::StrAppend(&records, lines[i], "\n");
  }
  KW_RETURN_IF_ERROR(Write(absl::StrCat(dir, "/", kRecordsFile), records));
  hsm::testing::SoftwareRootOfTrust forger;
  KW_ASSIGN_OR_RETURN(std::string pem, forger.GetOrCreateSigningKey("forged"));
  KW_ASSIGN_OR_RETURN(std::string fingerprint, crypto::PublicKeyFingerprint(pem));
  std::string checkpoints;
  for (uint64_t size = 10; size <= lines.size(); size += 10) {
    KW_ASSIGN_OR_RETURN(Hash root, tree.Root(size));
    const absl::Time time = absl::Now();
    KW_ASSIGN_OR_RETURN(std::string sig,
                        forger.Sign("forged", CheckpointMessage(environment, size, root, time)));
    absl::StrAppend(&checkpoints,
                    nlohmann::json({{"environment", environment},
                                    {"tree_size", size},
                                    {"root", ToHex(root)},
                                    {"time_unix_micros", absl::ToUnixMicros(time)},
                                    {"key_fingerprint", fingerprint},
                                    {"signature", absl::Base64Escape(sig)}})
                        .dump(),
                    "\n");
  }
  KW_RETURN_IF_ERROR(Write(absl::StrCat(dir, "/", kCheckpointsFile), checkpoints));
  return Write(absl::StrCat(dir, "/", kKeysFile), pem);
}

}  // namespace keyward::audit::testing

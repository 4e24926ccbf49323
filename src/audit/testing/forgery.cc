#include "audit/testing/forgery.h"
#include "audit/testing/log_files.h"

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
  KW_ASSIGN_OR_RETURN(std::vector<Hash> leaves, WriteLogLines(dir, lines, /*rechain=*/true));
  MerkleTree tree;
  for (const Hash& leaf : leaves) tree.Append(leaf);
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

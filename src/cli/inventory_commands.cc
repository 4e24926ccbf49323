// `keyward inventory`: the deployment's cryptography as a CycloneDX 1.6
// CBOM (or plain JSON): algorithms with their properties and the decision
// record behind each, the TLS 1.3 protocol and its suites, every key version
// (metadata only: ids, states, dates, purposes, where it lives) and the
// certificates in use.  docs/decisions/0032 says how Keyward's terms map to
// CycloneDX's.
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "cli/certificates.h"
#include "cli/cli.h"
#include "cli/files.h"
#include "crypto/random.h"
#include "keyward/version.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// One algorithm Keyward uses, as the CBOM describes it.
struct Algorithm {
  const char* ref;        // bom-ref
  const char* name;
  const char* primitive;  // CycloneDX algorithmProperties.primitive
  const char* parameter_set;
  const char* mode;       // "" when none
  const char* curve;      // "" when none
  std::vector<const char*> functions;
  int classical_bits;     // classicalSecurityLevel
  int nist_quantum_level;  // 0..6
  const char* oid;        // "" when none
  const char* used_for;
  std::vector<const char*> decisions;  // docs/decisions/...
  bool in_hsm = false;    // executes inside the HSM
};

const std::vector<Algorithm>& Algorithms() {
  static const auto* algorithms = new std::vector<Algorithm>{
      {"algorithm/aes-256-gcm", "AES-256-GCM", "ae", "256", "gcm", "",
       {"encrypt", "decrypt"}, 256, 5, "2.16.840.1.101.3.4.1.46",
       "message bodies and data key wraps (suites 0x0001, 0x0101); KEKs sealed by the root key",
       {"docs/decisions/0002-aead-algorithms.md", "docs/decisions/0003-nonces.md",
        "docs/decisions/0008-message-format.md", "docs/decisions/0010-hsm-sessions-and-root-key.md"}},
      {"algorithm/chacha20-poly1305", "ChaCha20-Poly1305", "ae", "256", "", "",
       {"encrypt", "decrypt"}, 256, 5, "",
       "message bodies under suite 0x0002 (CPUs without AES instructions)",
       {"docs/decisions/0002-aead-algorithms.md"}},
      {"algorithm/aes-256-siv", "AES-256-SIV", "ae", "256", "other", "",
       {"encrypt", "decrypt"}, 256, 5, "",
       "deterministic (searchable) field values",
       {"docs/decisions/0004-deterministic-aead.md", "docs/decisions/0023-aes-siv-s2v.md"}},
      {"algorithm/aes-256-kwp", "AES-256-KWP", "block-cipher", "256", "other", "",
       {"encrypt", "decrypt"}, 256, 5, "2.16.840.1.101.3.4.1.48",
       "wrapping key material (RFC 5649)", {"docs/decisions/0005-key-wrap.md"}},
      {"algorithm/hkdf-sha-256", "HKDF-SHA-256", "kdf", "256", "", "", {"keyderive"}, 256, 0,
       "", "per-message keys and key commitment; field and tenant keys",
       {"docs/decisions/0008-message-format.md", "docs/decisions/0011-key-hierarchy.md",
        "docs/decisions/0021-tenant-keys.md"}},
      {"algorithm/hmac-sha-256", "HMAC-SHA-256", "mac", "256", "", "", {"tag", "verify"}, 256, 0,
       "1.2.840.113549.2.9", "audit record context values; blind indexes",
       {"docs/decisions/0013-audit-context-hmac.md", "docs/decisions/0024-blind-index-mac.md"}},
      {"algorithm/sha-256", "SHA-256", "hash", "256", "", "", {"digest"}, 128, 2,
       "2.16.840.1.101.3.4.2.1", "the audit log's Merkle tree (RFC 6962)",
       {"docs/decisions/0012-audit-log.md"}},
      {"algorithm/ecdsa-p256-sha256", "ECDSA P-256 SHA-256", "signature", "256", "",
       "secg/secp256r1", {"sign", "verify"}, 128, 0, "1.2.840.10045.4.3.2",
       "audit checkpoints, signed inside the HSM",
       {"docs/decisions/0012-audit-log.md", "docs/decisions/0019-audit-trust-anchors.md"},
       true},
      {"algorithm/ecdsa-p384-sha384", "ECDSA P-384 SHA-384", "signature", "384", "",
       "secg/secp384r1", {"sign", "verify"}, 192, 0, "1.2.840.10045.4.3.3",
       "signed messages (suite 0x0101)", {"docs/decisions/0017-signed-messages.md"}},
      {"algorithm/ctr-drbg-aes-256", "CTR_DRBG AES-256", "drbg", "256", "ctr", "",
       {"generate"}, 256, 5, "", "every random value keywardd makes (data keys, nonces)",
       {"docs/decisions/0007-randomness.md"}},
      {"algorithm/aes-128-gcm", "AES-128-GCM", "ae", "128", "gcm", "", {"encrypt", "decrypt"},
       128, 1, "2.16.840.1.101.3.4.1.6", "TLS 1.3 (TLS_AES_128_GCM_SHA256)",
       {"docs/decisions/0032-tls-and-crypto-inventory.md"}},
      {"algorithm/sha-384", "SHA-384", "hash", "384", "", "", {"digest"}, 192, 4,
       "2.16.840.1.101.3.4.2.2", "TLS 1.3 (TLS_AES_256_GCM_SHA384)",
       {"docs/decisions/0032-tls-and-crypto-inventory.md"}},
  };
  return *algorithms;
}

struct TlsSuite {
  const char* name;
  const char* id;
  std::vector<const char*> algorithms;
};

// OpenSSL 3's TLS 1.3 suites, which keywardd and the SDK leave at their
// default (docs/decisions/0032).
const std::vector<TlsSuite>& TlsSuites() {
  static const auto* suites = new std::vector<TlsSuite>{
      {"TLS_AES_256_GCM_SHA384", "0x13,0x02", {"algorithm/aes-256-gcm", "algorithm/sha-384"}},
      {"TLS_CHACHA20_POLY1305_SHA256", "0x13,0x03",
       {"algorithm/chacha20-poly1305", "algorithm/sha-256"}},
      {"TLS_AES_128_GCM_SHA256", "0x13,0x01", {"algorithm/aes-128-gcm", "algorithm/sha-256"}},
  };
  return *suites;
}

// A key version's state in CycloneDX's vocabulary (NIST SP 800-57's).
std::string CbomState(const KeyVersionInfo& v) {
  if (v.compromised) return "compromised";
  switch (v.state) {
    case KeyVersionState::kEnabled:
      return "active";
    case KeyVersionState::kDecryptOnly:
      return "deactivated";  // processes protected data, protects no new data
    case KeyVersionState::kDisabled:
    case KeyVersionState::kPendingDestruction:
      return "suspended";
    case KeyVersionState::kDestroyed:
      return "destroyed";
    case KeyVersionState::kUnknown:
      break;
  }
  return "suspended";
}

std::string SuiteAlgorithm(Suite suite) {
  return suite == Suite::kChaCha20Poly1305HkdfSha256Commit ? "algorithm/chacha20-poly1305"
                                                           : "algorithm/aes-256-gcm";
}

Json Property(const std::string& name, const std::string& value) {
  return Json{{"name", name}, {"value", value}};
}

struct Facts {
  ServerInfo server;
  std::string server_address;
  std::vector<KeyInfo> keys;
  std::vector<CertificateInfo> certificates;
};

absl::StatusOr<Facts> Gather(Globals& globals, const std::vector<std::string>& cert_files) {
  Facts f;
  KW_ASSIGN_OR_RETURN(AdminClient * admin, globals.Admin());
  KW_ASSIGN_OR_RETURN(f.server, admin->GetServerInfo());
  f.server_address = admin->options().servers.front();
  std::string token;
  do {
    KW_ASSIGN_OR_RETURN(KeyList page, admin->ListKeys("", 500, token));
    f.keys.insert(f.keys.end(), page.keys.begin(), page.keys.end());
    token = page.next_page_token;
  } while (!token.empty());
  const ClientOptions& o = admin->options();
  const std::vector<std::pair<std::string, std::string>> files = {{"client", o.cert_file},
                                                                   {"ca", o.ca_file}};
  for (const auto& [source, path] : files) {
    KW_ASSIGN_OR_RETURN(auto certs, ReadCertificates(path, source));
    f.certificates.insert(f.certificates.end(), certs.begin(), certs.end());
  }
  if (auto served = FetchServerCertificates(o, f.server_address, absl::Seconds(5)); served.ok()) {
    f.certificates.insert(f.certificates.end(), served->begin(), served->end());
  } else {
    std::fprintf(stderr, "keyward: warning: %s; the inventory lists no server certificate\n",
                 std::string(served.status().message()).c_str());
  }
  for (const std::string& path : cert_files) {
    KW_ASSIGN_OR_RETURN(auto certs, ReadCertificates(path, "file"));
    f.certificates.insert(f.certificates.end(), certs.begin(), certs.end());
  }
  // One entry per certificate, however many places it was found in.
  std::map<std::string, CertificateInfo> unique;
  for (CertificateInfo& c : f.certificates) unique.emplace(c.sha256, std::move(c));
  f.certificates.clear();
  for (auto& [fp, c] : unique) f.certificates.push_back(std::move(c));
  return f;
}

Json AlgorithmComponent(const Algorithm& a) {
  Json props = {{"primitive", a.primitive}, {"parameterSetIdentifier", a.parameter_set}};
  if (*a.mode) props["mode"] = a.mode;
  if (*a.curve) props["curve"] = a.curve;
  props["executionEnvironment"] = a.in_hsm ? "hardware" : "software-plain-ram";
  props["implementationPlatform"] = a.in_hsm ? "unknown" : "x86_64";
  props["certificationLevel"] = Json::array({"none"});
  props["cryptoFunctions"] = a.functions;
  props["classicalSecurityLevel"] = a.classical_bits;
  props["nistQuantumSecurityLevel"] = a.nist_quantum_level;
  Json crypto = {{"assetType", "algorithm"}, {"algorithmProperties", props}};
  if (*a.oid) crypto["oid"] = a.oid;
  Json refs = Json::array();
  for (const char* d : a.decisions) {
    refs.push_back({{"type", "documentation"}, {"url", d}, {"comment", "decision record"}});
  }
  return Json{{"type", "cryptographic-asset"},
              {"bom-ref", a.ref},
              {"name", a.name},
              {"description", a.used_for},
              {"cryptoProperties", crypto},
              {"externalReferences", refs}};
}

Json KeyVersionComponent(const KeyInfo& k, const KeyVersionInfo& v) {
  Json material = {{"type", "secret-key"},
                   {"id", absl::StrCat(k.name, "/v", v.version)},
                   {"state", CbomState(v)},
                   {"algorithmRef", SuiteAlgorithm(k.suite)},
                   {"creationDate", Rfc3339(v.created)},
                   {"size", 256}};
  if (v.destroy_after) material["expirationDate"] = Rfc3339(*v.destroy_after);
  if (v.protection == KeyProtection::kHsmResident) {
    material["securedBy"] = {{"mechanism", "HSM (non-extractable PKCS#11 object)"}};
  } else {
    material["securedBy"] = {{"mechanism", "sealed by the HSM root key"},
                             {"algorithmRef", "algorithm/aes-256-gcm"}};
  }
  Json props = Json::array({Property("keyward:key", k.name),
                            Property("keyward:version", std::to_string(v.version)),
                            Property("keyward:state", std::string(KeyVersionStateName(v.state))),
                            Property("keyward:protection",
                                     std::string(KeyProtectionName(v.protection))),
                            Property("keyward:purpose", std::string(KeyPurposeName(k.purpose))),
                            Property("keyward:suite", std::string(SuiteName(k.suite))),
                            Property("keyward:environment", k.environment),
                            Property("keyward:primary",
                                     v.version == k.primary_version ? "true" : "false"),
                            Property("keyward:data_keys_issued",
                                     std::to_string(v.data_keys_issued))});
  if (k.rotation_period > absl::ZeroDuration()) {
    props.push_back(Property("keyward:rotation_period_seconds",
                             std::to_string(absl::ToInt64Seconds(k.rotation_period))));
  }
  if (v.destroyed) props.push_back(Property("keyward:destroyed", Rfc3339(*v.destroyed)));
  if (v.compromised) {
    props.push_back(Property("keyward:compromised", Rfc3339(*v.compromised)));
    props.push_back(Property("keyward:compromise_reason", v.compromise_reason));
  }
  return Json{{"type", "cryptographic-asset"},
              {"bom-ref", absl::StrCat("key/", k.name, "/v", v.version)},
              {"name", absl::StrCat(k.name, " v", v.version)},
              {"cryptoProperties",
               {{"assetType", "related-crypto-material"},
                {"relatedCryptoMaterialProperties", material}}},
              {"properties", props}};
}

std::string SignatureRef(const CertificateInfo& c) {
  if (c.signature_algorithm == "ecdsa-with-SHA256") return "algorithm/ecdsa-p256-sha256";
  if (c.signature_algorithm == "ecdsa-with-SHA384") return "algorithm/ecdsa-p384-sha384";
  return "";
}

Json CertificateComponent(const CertificateInfo& c) {
  Json props = {{"subjectName", c.subject},
                {"issuerName", c.issuer},
                {"notValidBefore", Rfc3339(c.not_before)},
                {"notValidAfter", Rfc3339(c.not_after)},
                {"certificateFormat", "X.509"},
                {"certificateExtension", "pem"}};
  if (const std::string ref = SignatureRef(c); !ref.empty()) props["signatureAlgorithmRef"] = ref;
  return Json{{"type", "cryptographic-asset"},
              {"bom-ref", absl::StrCat("certificate/", c.sha256)},
              {"name", c.subject},
              {"cryptoProperties", {{"assetType", "certificate"}, {"certificateProperties", props}}},
              {"properties",
               Json::array({Property("keyward:role", c.source), Property("keyward:file", c.path),
                            Property("keyward:sha256", c.sha256),
                            Property("keyward:serial", c.serial),
                            Property("keyward:key_algorithm", c.key_algorithm),
                            Property("keyward:signature_algorithm", c.signature_algorithm),
                            Property("keyward:ca", c.is_ca ? "true" : "false"),
                            Property("keyward:dev_ca", c.dev ? "true" : "false")})}};
}

absl::StatusOr<std::string> SerialNumber() {
  KW_ASSIGN_OR_RETURN(std::string b, crypto::RandomBytes(16));
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::string h = absl::BytesToHexString(b);
  return absl::StrCat("urn:uuid:", h.substr(0, 8), "-", h.substr(8, 4), "-", h.substr(12, 4),
                      "-", h.substr(16, 4), "-", h.substr(20));
}

absl::StatusOr<Json> CycloneDx(const Facts& f) {
  Json components = Json::array();
  for (const Algorithm& a : Algorithms()) components.push_back(AlgorithmComponent(a));
  Json suites = Json::array();
  for (const TlsSuite& s : TlsSuites()) {
    suites.push_back({{"name", s.name}, {"algorithms", s.algorithms}, {"identifiers", Json::array({s.id})}});
  }
  components.push_back(
      {{"type", "cryptographic-asset"},
       {"bom-ref", "protocol/tls-1.3"},
       {"name", "TLS 1.3"},
       {"description", "every connection to keywardd: mutual TLS 1.3 only"},
       {"cryptoProperties",
        {{"assetType", "protocol"},
         {"protocolProperties", {{"type", "tls"}, {"version", "1.3"}, {"cipherSuites", suites}}}}},
       {"externalReferences",
        Json::array({{{"type", "documentation"},
                      {"url", "docs/decisions/0032-tls-and-crypto-inventory.md"},
                      {"comment", "decision record"}}})}});
  components.push_back(
      {{"type", "cryptographic-asset"},
       {"bom-ref", "key/root"},
       {"name", "HSM root key"},
       {"description", "seals every key version's KEK; generated in the HSM, never extractable"},
       {"cryptoProperties",
        {{"assetType", "related-crypto-material"},
         {"relatedCryptoMaterialProperties",
          {{"type", "secret-key"},
           {"id", "root"},
           {"state", "active"},
           {"algorithmRef", "algorithm/aes-256-gcm"},
           {"size", 256},
           {"securedBy", {{"mechanism", absl::StrCat("HSM: ", f.server.hsm)}}}}}}},
       {"properties", Json::array({Property("keyward:hsm_software",
                                            f.server.hsm_software ? "true" : "false")})},
       {"externalReferences",
        Json::array({{{"type", "documentation"},
                      {"url", "docs/decisions/0010-hsm-sessions-and-root-key.md"},
                      {"comment", "decision record"}}})}});
  for (const KeyInfo& k : f.keys) {
    for (const KeyVersionInfo& v : k.versions) components.push_back(KeyVersionComponent(k, v));
  }
  for (const CertificateInfo& c : f.certificates) components.push_back(CertificateComponent(c));
  Json dependencies = Json::array();
  for (const KeyInfo& k : f.keys) {
    for (const KeyVersionInfo& v : k.versions) {
      dependencies.push_back({{"ref", absl::StrCat("key/", k.name, "/v", v.version)},
                              {"dependsOn", Json::array({"key/root"})}});
    }
  }
  KW_ASSIGN_OR_RETURN(std::string serial, SerialNumber());
  return Json{
      {"bomFormat", "CycloneDX"},
      {"specVersion", "1.6"},
      {"serialNumber", serial},
      {"version", 1},
      {"metadata",
       {{"timestamp", Rfc3339(absl::Now())},
        {"tools",
         {{"components",
           Json::array({{{"type", "application"}, {"name", "keyward"}, {"version", kVersion}}})}}},
        {"component",
         {{"type", "application"},
          {"bom-ref", "keywardd"},
          {"name", "keywardd"},
          {"version", f.server.version},
          {"description", absl::StrCat("keywardd at ", f.server_address)}}},
        {"properties",
         Json::array({Property("keyward:environment", f.server.environment),
                      Property("keyward:server", f.server_address),
                      Property("keyward:hsm", f.server.hsm),
                      Property("keyward:audit_checkpoint_key_fingerprint",
                               f.server.audit_checkpoint_key_fingerprint)})}}},
      {"components", components},
      {"dependencies", dependencies}};
}

// The same facts, in Keyward's own plain shape.
Json PlainJson(const Facts& f) {
  Json algorithms = Json::array();
  for (const Algorithm& a : Algorithms()) {
    algorithms.push_back({{"name", a.name},
                          {"primitive", a.primitive},
                          {"parameter_set", a.parameter_set},
                          {"used_for", a.used_for},
                          {"in_hsm", a.in_hsm},
                          {"decision_records", a.decisions}});
  }
  Json suites = Json::array();
  for (const TlsSuite& s : TlsSuites()) suites.push_back(s.name);
  Json keys = Json::array();
  for (const KeyInfo& k : f.keys) {
    Json versions = Json::array();
    for (const KeyVersionInfo& v : k.versions) {
      Json j = {{"version", v.version},
                {"state", std::string(KeyVersionStateName(v.state))},
                {"cbom_state", CbomState(v)},
                {"protection", std::string(KeyProtectionName(v.protection))},
                {"created", Rfc3339(v.created)},
                {"primary", v.version == k.primary_version}};
      if (v.destroy_after) j["destroy_after"] = Rfc3339(*v.destroy_after);
      if (v.compromised) j["compromised"] = Rfc3339(*v.compromised);
      versions.push_back(j);
    }
    keys.push_back({{"name", k.name},
                    {"purpose", std::string(KeyPurposeName(k.purpose))},
                    {"suite", std::string(SuiteName(k.suite))},
                    {"environment", k.environment},
                    {"versions", versions}});
  }
  Json certs = Json::array();
  for (const CertificateInfo& c : f.certificates) {
    certs.push_back({{"role", c.source},
                     {"file", c.path},
                     {"subject", c.subject},
                     {"issuer", c.issuer},
                     {"not_before", Rfc3339(c.not_before)},
                     {"not_after", Rfc3339(c.not_after)},
                     {"sha256", c.sha256},
                     {"key_algorithm", c.key_algorithm},
                     {"signature_algorithm", c.signature_algorithm},
                     {"dev_ca", c.dev}});
  }
  return Json{{"environment", f.server.environment},
              {"server", f.server_address},
              {"server_version", f.server.version},
              {"hsm", f.server.hsm},
              {"hsm_software", f.server.hsm_software},
              {"algorithms", algorithms},
              {"tls", {{"version", "1.3"}, {"cipher_suites", suites}}},
              {"keys", keys},
              {"certificates", certs}};
}

struct InventoryArgs {
  std::string format = "cyclonedx";
  std::string output = "-";
  std::vector<std::string> certs;
};

absl::Status RunInventory(Globals& globals, const InventoryArgs& args) {
  if (args.format != "cyclonedx" && args.format != "json") {
    return UsageError(absl::StrCat("unknown --format '", args.format, "' (cyclonedx or json)"));
  }
  KW_ASSIGN_OR_RETURN(Facts facts, Gather(globals, args.certs));
  Json out;
  if (args.format == "cyclonedx") {
    KW_ASSIGN_OR_RETURN(out, CycloneDx(facts));
  } else {
    out = PlainJson(facts);
  }
  KW_ASSIGN_OR_RETURN(auto output, AtomicOutput::Create(args.output, 0644));
  KW_RETURN_IF_ERROR(output->stream().Write(out.dump(2) + "\n"));
  return output->Commit();
}

}  // namespace

void RegisterInventoryCommands(CLI::App& app, Globals& globals, Action& action) {
  static InventoryArgs args;
  auto* cmd = app.add_subcommand(
      "inventory",
      "Export the deployment's cryptographic inventory: a CycloneDX 1.6 CBOM\n"
      "(default) or plain JSON.  Algorithms with their properties and decision\n"
      "records, TLS 1.3 and its suites, every key version (metadata only, never\n"
      "key material), the certificates in use.  Needs list-keys on \"\".");
  cmd->add_option("--format", args.format, "cyclonedx (default) or json");
  cmd->add_option("-o,--output", args.output, "file to write (default -: stdout)");
  cmd->add_option("--cert", args.certs, "another certificate file to list; repeatable");
  cmd->callback([&globals, &action] {
    action = [&globals] { return RunInventory(globals, args); };
  });
}

}  // namespace keyward::cli

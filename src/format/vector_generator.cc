// Writes the frozen test vectors of format v1 (tests/vectors/format_v1/).
// Run once per format version; it refuses to overwrite existing files,
// because released vectors never change.
//   build/release/bin/format_vector_generator tests/vectors/format_v1
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/hkdf.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "format/message_keys.h"
#include "format/wire.h"
#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"
#include "nlohmann/json.hpp"

namespace keyward {
namespace {

using Json = nlohmann::ordered_json;

std::string Hex(absl::string_view s) { return absl::BytesToHexString(s); }

std::string Bytes(int start, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(start + i));
  return s;
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return s;
}

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "generator: %s\n", s.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) Die(v.status());
  return std::move(*v);
}

struct RawKey {
  std::string name;
  SecretData key;
  std::unique_ptr<RawAesKeyring> keyring;
};

struct Case {
  std::string name, description;
  Suite suite;
  uint32_t frame_size;
  EncryptionContext context;
  std::string plaintext;
  std::vector<const RawKey*> keys;  // [0] is primary
  int seed;
};

Json ContextJson(const EncryptionContext& c) {
  Json j = Json::object();
  for (const auto& [k, v] : c) j[k] = v;
  return j;
}

Json Generate(const Case& c, std::string* message_out) {
  SecretData data_key = SecretData::CopyFrom(Bytes(0x40 + c.seed, 32));
  std::string message_id = Bytes(0x80 + c.seed, 32);
  format::EncryptionMaterials m;
  m.suite = c.suite;
  m.frame_size = c.frame_size;
  m.message_id = message_id;
  m.context = c.context;
  m.data_key = &data_key;
  Json wrapped = Json::array();
  for (size_t i = 0; i < c.keys.size(); ++i) {
    WrappedDataKey w = Must(c.keys[i]->keyring->WrapDataKey(data_key, c.context));
    if (i == 0) m.key = w.key;
    wrapped.push_back({{"raw_key", c.keys[i]->name},
                       {"provider_id", w.encrypted.provider_id},
                       {"provider_info", w.encrypted.provider_info},
                       {"ciphertext", Hex(w.encrypted.ciphertext)}});
    m.data_keys.push_back(std::move(w.encrypted));
  }
  std::string message;
  StringInputStream in(c.plaintext);
  StringOutputStream out(&message);
  if (auto s = format::EncryptWithMaterials(m, in, out); !s.ok()) Die(s);

  std::string info(format::kKeyScheduleLabel.data(),
                   format::kKeyScheduleLabel.size());
  format::AppendBigEndian(&info, static_cast<uint16_t>(c.suite), 2);
  info.append(message_id);
  SecretData okm = Must(crypto::HkdfExpand(crypto::HashFunction::kSha256,
                                           data_key.AsStringView(), info, 64));
  MessageInfo mi = Must(InspectMessage(message));
  std::string authenticated;
  StringInputStream hin(message);
  format::Header h = Must(format::ReadHeader(hin, &authenticated));
  *message_out = message;
  return Json{{"name", c.name},
              {"description", c.description},
              {"suite", std::string(SuiteName(c.suite))},
              {"suite_id", static_cast<int>(c.suite)},
              {"frame_size", c.frame_size},
              {"environment", m.key.environment},
              {"key_name", m.key.key_name},
              {"key_version", m.key.key_version},
              {"context", ContextJson(c.context)},
              {"plaintext", Hex(c.plaintext)},
              {"data_key", Hex(data_key.AsStringView())},
              {"message_id", Hex(message_id)},
              {"wrapped_keys", wrapped},
              {"hkdf_info", Hex(info)},
              {"message_key", Hex(okm.AsStringView().substr(0, 32))},
              {"commitment", Hex(okm.AsStringView().substr(32))},
              {"header_tag", Hex(h.tag)},
              {"header_length", mi.header_bytes},
              {"frames", mi.frames},
              {"message", Hex(message)}};
}

void WriteNew(const std::string& path, const Json& j) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    std::fprintf(stderr,
                 "generator: %s exists; released vectors never change\n",
                 path.c_str());
    std::exit(1);
  }
  std::string text = j.dump(2) + "\n";
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    std::exit(1);
  }
  ::close(fd);
  std::printf("wrote %s\n", path.c_str());
}

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: format_vector_generator DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  RawKey k1{"k1", SecretData::CopyFrom(Bytes(0x00, 32)), nullptr};
  RawKey k2{"k2", SecretData::CopyFrom(Bytes(0x20, 32)), nullptr};
  k1.keyring = Must(RawAesKeyring::FromKey(k1.key));
  k2.keyring = Must(RawAesKeyring::FromKey(k2.key));
  Json keys = {{"k1", {{"id", k1.keyring->key_id()}, {"key", Hex(k1.key.AsStringView())}}},
               {"k2", {{"id", k2.keyring->key_id()}, {"key", Hex(k2.key.AsStringView())}}}};
  const EncryptionContext ctx{{"tenant", "acme"}, {"purpose", "test vectors"}};
  const EncryptionContext unicode{{"ville", "Z\xc3\xbcrich"}, {"\xe2\x82\xac", "euro"}};

  std::string aes_frames_message;
  for (Suite suite : {Suite::kAes256GcmHkdfSha256Commit,
                      Suite::kChaCha20Poly1305HkdfSha256Commit}) {
    const int s = suite == Suite::kAes256GcmHkdfSha256Commit ? 0 : 16;
    std::vector<Case> cases = {
        {"empty-plaintext-empty-context",
         "an empty plaintext: one final frame of length 0", suite, 64, {}, "",
         {&k1}, s + 1},
        {"single-frame",
         "a short record under the default frame size: one final frame",
         suite, kDefaultFrameSize, ctx, "attack at dawn", {&k1}, s + 2},
        {"framed-with-partial-final-frame",
         "200 bytes at frame size 64: three regular frames and a final frame "
         "of 8 bytes", suite, 64, ctx, Pattern(200), {&k1}, s + 3},
        {"framed-exact-multiple",
         "128 bytes at frame size 64: one regular frame and a full final frame",
         suite, 64, {}, Pattern(128), {&k1}, s + 4},
        {"two-wrapped-data-keys",
         "one data key wrapped for k1 (primary) and k2 (for example a "
         "disaster-recovery key); either opens the message", suite, 64, unicode,
         Pattern(100), {&k1, &k2}, s + 5},
    };
    Json vectors = Json::array();
    for (const Case& c : cases) {
      std::string message;
      vectors.push_back(Generate(c, &message));
      if (suite == Suite::kAes256GcmHkdfSha256Commit &&
          c.name == "framed-with-partial-final-frame") {
        aes_frames_message = message;
      }
    }
    Json file = {{"format", "keyward message v1"},
                 {"note", "Frozen: released vectors never change; a new format "
                          "version gets new files. Byte strings are lowercase "
                          "hex. docs/format.md explains every field."},
                 {"raw_keys", keys},
                 {"vectors", vectors}};
    WriteNew(absl::StrCat(dir, "/",
                          s == 0 ? "aes-256-gcm.json" : "chacha20-poly1305.json"),
             file);
  }

  // Negative vectors: corruptions of the AES "framed-with-partial-final-frame"
  // message, each with the error a reader must report.
  const std::string& m = aes_frames_message;
  MessageInfo mi = Must(InspectMessage(m));
  const size_t h = mi.header_bytes;
  const size_t regular = 1 + 64 + 16;
  auto flip = [&](size_t at) {
    std::string x = m;
    x[at] = static_cast<char>(x[at] ^ 0x01);
    return x;
  };
  std::string header = m.substr(0, h), f1 = m.substr(h, regular),
              f2 = m.substr(h + regular, regular),
              f3 = m.substr(h + 2 * regular, regular),
              fin = m.substr(h + 3 * regular);
  // Commitment mismatch: the k1 entry replaced by a wrap of another data key.
  std::string forged;
  {
    std::string authenticated;
    StringInputStream in(m);
    format::Header hd = Must(format::ReadHeader(in, &authenticated));
    SecretData other = SecretData::CopyFrom(Bytes(0xa0, 32));
    hd.data_keys[0] =
        Must(k1.keyring->WrapDataKey(other, hd.context)).encrypted;
    forged = Must(format::SerializeAuthenticatedHeader(hd)) + hd.tag +
             m.substr(h);
  }
  std::string v2 = m, suite3 = m, ctx_count = m, bad_type = m;
  v2[4] = 2;
  suite3[6] = 3;
  // The context count: after magic, version, suite, id, frame size and the
  // key reference ("offline", "raw/<16 hex>", version).
  const size_t count_at = 4 + 1 + 2 + 32 + 4 + 1 + 7 + 2 + 20 + 4;
  ctx_count[count_at] = 0;
  ctx_count[count_at + 1] = 65;
  bad_type[h] = 2;
  std::string unsorted = m;
  {
    // Swap the two context entries' order by renaming "purpose" -> "zurpose"
    // ("tenant" then follows a larger key).
    size_t at = unsorted.find("purpose");
    unsorted[at] = 'z';
  }
  struct Neg {
    std::string name, description, message, error;
    std::vector<std::string> keys;
    EncryptionContext expected_context;
  };
  std::vector<Neg> negs = {
      {"not-a-message", "no KWRD magic", "%PDF-1.7 not a message",
       "not-a-keyward-message", {"k1"}, {}},
      {"future-version", "format version byte 2", v2, "unsupported-version",
       {"k1"}, {}},
      {"unknown-suite", "suite id 0x0003", suite3, "unsupported-suite",
       {"k1"}, {}},
      {"context-count-over-limit", "65 context entries announced",
       ctx_count, "limit-exceeded", {"k1"}, {}},
      {"context-keys-unsorted", "context keys not in byte order", unsorted,
       "malformed-header", {"k1"}, {}},
      {"truncated-header", "the message ends inside the header",
       m.substr(0, h - 5), "truncated", {"k1"}, {}},
      {"missing-final-frame", "the final frame was cut off",
       header + f1 + f2 + f3, "truncated", {"k1"}, {}},
      {"truncated-final-frame", "the final frame lost its last byte",
       m.substr(0, m.size() - 1), "truncated", {"k1"}, {}},
      {"appended-data", "a byte after the final frame", m + "x",
       "trailing-data", {"k1"}, {}},
      {"reordered-frames", "frames 1 and 2 swapped",
       header + f2 + f1 + f3 + fin, "authentication-failed", {"k1"}, {}},
      {"duplicated-frame", "frame 1 repeated", header + f1 + f1 + f2 + f3 + fin,
       "authentication-failed", {"k1"}, {}},
      {"flipped-frame-ciphertext", "one bit of frame 2's ciphertext flipped",
       flip(h + regular + 10), "authentication-failed", {"k1"}, {}},
      {"flipped-header-tag", "one bit of the header tag flipped", flip(h - 1),
       "authentication-failed", {"k1"}, {}},
      {"flipped-context-value",
       "one bit of a context value flipped: the raw-aes keyring binds the "
       "context into the wrapped data key, so unwrapping fails first",
       flip(m.find("acme")), "no-keyring-could-unwrap", {"k1"}, {}},
      {"flipped-key-version",
       "one bit of the key version flipped: unwraps, but the header tag fails",
       flip(4 + 1 + 2 + 32 + 4 + 1 + 7 + 2 + 20 + 2), "authentication-failed",
       {"k1"}, {}},
      {"bad-frame-type", "frame 1's type byte is 0x02", bad_type,
       "malformed-frame", {"k1"}, {}},
      {"commitment-mismatch",
       "the wrapped data key replaced by a wrap of a different data key",
       forged, "commitment-mismatch", {"k1"}, {}},
      {"context-mismatch", "the reader expects tenant=globex", m,
       "context-mismatch", {"k1"}, {{"tenant", "globex"}}},
      {"wrong-key", "only k2 is available; the message is for k1", m,
       "no-keyring-could-unwrap", {"k2"}, {}},
  };
  Json neg = Json::array();
  for (const Neg& n : negs) {
    neg.push_back({{"name", n.name},
                   {"description", n.description},
                   {"raw_keys", n.keys},
                   {"expected_context", ContextJson(n.expected_context)},
                   {"message", Hex(n.message)},
                   {"expected_error", n.error}});
  }
  WriteNew(dir + "/negative.json",
           {{"format", "keyward message v1"},
            {"note", "Frozen. Each message must fail to decrypt with "
                     "expected_error (keyward::ErrorCodeName) using the listed "
                     "raw keys from aes-256-gcm.json."},
            {"vectors", neg}});
  return 0;
}

}  // namespace
}  // namespace keyward

int main(int argc, char** argv) { return keyward::Main(argc, argv); }

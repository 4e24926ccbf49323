// Writes the frozen test vectors of format v1 (tests/vectors/format_v1/).
// Run once per format version; it refuses to overwrite existing files,
// because released vectors never change.
//   build/release/bin/format_vector_generator tests/vectors/format_v1
// Long on purpose: one job, the frozen vectors, and most of it is tables of
// cases.  Each negative vector is cut from a message built earlier in the same
// run, at offsets counted from docs/format.md; it reads best beside that message.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <initializer_list>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/hkdf.h"
#include "crypto/signature.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "format/message_keys.h"
#include "format/wire.h"
#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"
#include "nlohmann/json.hpp"
#include "testing/keyrings.h"

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

// The fixed signing key of signed vector `seed` (a test scalar, never a
// real key).
std::unique_ptr<crypto::EcdsaP384Signer> VectorSigner(int seed) {
  return Must(crypto::EcdsaP384Signer::FromPrivateScalarForTesting(Bytes(0xc0 + seed, 48)));
}

// What a signed message's signature covers before its body (§7.1), written
// out here from the spec rather than taken from the library.
std::string SignedPrefix(const format::Header& h) {
  std::string p = "keyward signed message v1";
  format::AppendBigEndian(&p, static_cast<uint16_t>(h.suite), 2);
  p += h.message_id;
  format::AppendBigEndian(&p, h.frame_size, 4);
  p += format::SerializeContext(h.context);
  p += h.commitment;
  return p;
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
  std::unique_ptr<crypto::EcdsaP384Signer> signer;
  if (IsSignedSuite(c.suite)) {
    signer = VectorSigner(c.seed);
    m.context[kSigningKeyContextKey] = absl::Base64Escape(signer->public_key());
    m.signer = signer.get();
  }
  Json wrapped = Json::array();
  for (size_t i = 0; i < c.keys.size(); ++i) {
    WrappedDataKey w = Must(c.keys[i]->keyring->WrapDataKey(data_key, m.context));
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
  Json signature = Json::object();
  if (IsSignedSuite(c.suite)) {
    const size_t footer = mi.total_bytes - 2 - mi.signature_bytes;
    signature = {{"signing_key", Hex(Must(format::SigningKeyOf(c.suite, m.context)))},
                 {"signed_prefix", Hex(SignedPrefix(h))},
                 {"signature", Hex(absl::string_view(message).substr(footer + 2))}};
  }
  Json vector = Json{{"name", c.name},
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
  for (auto& [k, v] : signature.items()) vector[k] = v;
  vector["context"] = ContextJson(m.context);
  return vector;
}

void WriteNew(const std::string& path, const Json& j) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    // Released vectors never change: only files that do not exist yet (a
    // new suite's) are written.
    std::printf("%s exists: left as it is\n", path.c_str());
    return;
  }
  std::string text = j.dump(2) + "\n";
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    std::exit(1);
  }
  ::close(fd);
  std::printf("wrote %s\n", path.c_str());
}

// Seed inputs for the format fuzzers: valid messages under the fuzzers'
// fixed raw key (32 bytes of 0x11), so mutations reach frame parsing.
int WriteFuzzSeeds(const std::string& dir) {
  auto keyring =
      Must(RawAesKeyring::FromKey(SecretData::CopyFrom(std::string(32, '\x11'))));
  testing::Keyrings keyrings{keyring.get()};
  int n = 0;
  for (Suite suite : {Suite::kAes256GcmHkdfSha256Commit,
                      Suite::kChaCha20Poly1305HkdfSha256Commit}) {
    for (size_t size : {0, 10, 64, 200}) {
      EncryptOptions options;
      options.suite = suite;
      options.frame_size = 64;
      std::string m = Must(EncryptMessage(Pattern(size), {{"tenant", "acme"}},
                                          keyrings, options));
      std::ofstream(absl::StrCat(dir, "/seed-", n++), std::ios::binary) << m;
    }
  }
  std::printf("wrote %d seeds to %s\n", n, dir.c_str());
  return 0;
}

// The signed suite (0x0101): positive vectors, and negative ones around the
// signature (docs/format.md §7.1).
int WriteSignedVectors(const std::string& dir, const Json& keys, const RawKey& k1,
                       const RawKey& k2, const EncryptionContext& ctx,
                       const EncryptionContext& unicode) {
  const Suite suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
  std::vector<Case> cases = {
      {"signed-empty-plaintext", "an empty plaintext, signed: one final frame of length 0 "
       "and the signature", suite, 64, {}, "", {&k1}, 33},
      {"signed-single-frame", "a short record, signed", suite, kDefaultFrameSize, ctx,
       "attack at dawn", {&k1}, 34},
      {"signed-framed-with-partial-final-frame",
       "200 bytes at frame size 64, signed: three regular frames, a final frame of 8 bytes, "
       "the signature", suite, 64, ctx, Pattern(200), {&k1}, 35},
      {"signed-two-wrapped-data-keys", "one data key wrapped for k1 and k2, signed", suite, 64,
       unicode, Pattern(100), {&k1, &k2}, 36},
  };
  Json vectors = Json::array();
  std::string framed;
  for (const Case& c : cases) {
    std::string message;
    vectors.push_back(Generate(c, &message));
    if (c.name == "signed-framed-with-partial-final-frame") framed = message;
  }
  WriteNew(dir + "/aes-256-gcm-ecdsa-p384.json",
           {{"format", "keyward message v1"},
            {"note", "Frozen. Suite 0x0101: as aes-256-gcm.json, plus signing_key (the "
                     "compressed P-384 point the context carries), signed_prefix (the bytes "
                     "signed before the body) and signature (DER ECDSA-SHA384). "
                     "docs/format.md section 7.1."},
            {"raw_keys", keys},
            {"vectors", vectors}});

  // Negative vectors around the signature, from the framed message.
  const MessageInfo mi = Must(InspectMessage(framed));
  const size_t footer = mi.total_bytes - 2 - mi.signature_bytes;
  const std::string unsigned_part = framed.substr(0, footer);
  const std::string sig = framed.substr(footer + 2);
  std::string flipped = framed;
  flipped.back() = static_cast<char>(flipped.back() ^ 0x01);
  std::string zero_len = unsigned_part;
  format::AppendBigEndian(&zero_len, 0, 2);
  std::string long_len = unsigned_part;
  format::AppendBigEndian(&long_len, 105, 2);
  long_len += std::string(105, '\x30');
  // A valid signature of the same bytes by another key: not the key the
  // context (and so the wrapped data key) is bound to.
  std::string other_signed;
  {
    std::string authenticated;
    StringInputStream in(framed);
    format::Header h = Must(format::ReadHeader(in, &authenticated));
    auto other = VectorSigner(99);
    if (auto s = other->Update(SignedPrefix(h)); !s.ok()) Die(s);
    if (auto s = other->Update(absl::string_view(unsigned_part).substr(mi.header_bytes));
        !s.ok()) {
      Die(s);
    }
    const std::string other_sig = Must(other->Finish());
    other_signed = unsigned_part;
    format::AppendBigEndian(&other_signed, other_sig.size(), 2);
    other_signed += other_sig;
  }
  // The suite byte changed: a signed message read as unsigned keeps a
  // signing key in its context; an unsigned one read as signed lacks it.
  std::string as_unsigned = framed;
  as_unsigned[5] = 0x00;
  as_unsigned[6] = 0x01;
  std::string unsigned_message;
  {
    Case c{"x", "x", Suite::kAes256GcmHkdfSha256Commit, 64, ctx, Pattern(200), {&k1}, 37};
    (void)Generate(c, &unsigned_message);
  }
  std::string as_signed = unsigned_message;
  as_signed[5] = 0x01;
  as_signed[6] = 0x01;
  struct Neg {
    std::string name, description, message, error;
  };
  std::vector<Neg> negs = {
      {"signature-flipped", "one bit of the signature flipped", flipped, "authentication-failed"},
      {"signature-by-another-key",
       "a valid signature of the same bytes by a key other than the context's",
       other_signed, "authentication-failed"},
      {"signature-missing", "the message ends after its final frame", unsigned_part,
       "truncated"},
      {"signature-truncated", "the message ends inside the signature",
       framed.substr(0, framed.size() - 10), "truncated"},
      {"signature-length-zero", "the signature length is 0", zero_len, "malformed-frame"},
      {"signature-length-over-limit", "the signature length is 105 (over 104)", long_len,
       "malformed-frame"},
      {"signed-appended-data", "a byte after the signature", framed + "x", "trailing-data"},
      {"unsigned-suite-with-signing-key",
       "suite changed to 0x0001: an unsigned message may not carry a signing key",
       as_unsigned, "malformed-header"},
      {"signed-suite-without-signing-key",
       "an unsigned message's suite changed to 0x0101: no signing key in its context",
       as_signed, "malformed-header"},
  };
  Json neg = Json::array();
  for (const Neg& n : negs) {
    neg.push_back({{"name", n.name},
                   {"description", n.description},
                   {"raw_keys", {"k1"}},
                   {"expected_context", Json::object()},
                   {"expected_environment", ""},
                   {"message", Hex(n.message)},
                   {"expected_error", n.error}});
  }
  (void)sig;
  WriteNew(dir + "/negative-signed.json",
           {{"format", "keyward message v1"},
            {"note", "Frozen. As negative.json, for the signed suite 0x0101; raw keys from "
                     "aes-256-gcm.json."},
            {"vectors", neg}});
  return 0;
}

int Main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--fuzz-seeds") {
    return WriteFuzzSeeds(argv[2]);
  }
  if (argc != 2) {
    std::fprintf(stderr,
                 "usage: format_vector_generator DIR\n"
                 "       format_vector_generator --fuzz-seeds DIR\n");
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

  std::string aes_frames_message, chacha_frames_message, two_keys_message;
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
      if (c.name == "framed-with-partial-final-frame") {
        (s == 0 ? aes_frames_message : chacha_frames_message) = message;
      }
      if (s == 0 && c.name == "two-wrapped-data-keys") two_keys_message = message;
    }
    if (s == 0) {
      // A writer that did not know the input had ended: a full regular frame
      // followed by an empty final frame.  Never produced by Keyward, but a
      // reader must accept it (docs/format.md section 7).
      Case c{"regular-then-empty-final",
             "64 bytes at frame size 64 written as a regular frame and an "
             "empty final frame (non-canonical; readers must accept it)",
             suite, 64, {}, Pattern(64), {&k1}, 6};
      std::string canonical;
      Json v = Generate(c, &canonical);
      const size_t header_len = v["header_length"].get<size_t>();
      SecretData dk = SecretData::CopyFrom(Bytes(0x40 + 6, 32));
      format::MessageKeys message_keys =
          Must(format::DeriveMessageKeys(suite, dk, Bytes(0x80 + 6, 32)));
      std::string body;
      for (uint64_t seq : {1, 2}) {
        const bool final = seq == 2;
        const std::string pt = final ? "" : c.plaintext;
        std::string sealed(pt.size() + 16, '\0');
        const auto nonce = format::SequenceNonce(seq);
        const auto aad = format::FrameAad(seq, final);
        if (auto st = message_keys.aead->Seal(
                absl::string_view(nonce.data(), nonce.size()), pt,
                absl::string_view(aad.data(), aad.size()),
                {reinterpret_cast<uint8_t*>(sealed.data()), sealed.size()});
            !st.ok()) {
          Die(st);
        }
        body.push_back(final ? 1 : 0);
        if (final) format::AppendBigEndian(&body, 0, 4);
        body += sealed;
      }
      std::string message = canonical.substr(0, header_len) + body;
      v["frames"] = 2;
      v["canonical"] = false;
      v["message"] = Hex(message);
      vectors.push_back(v);
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
  // A context key whose own rule breaks, followed by a value announcing
  // more than the limit: the key is checked when read, so its error wins.
  // The first entry is "purpose" (key at count_at + 4, its value's length
  // at count_at + 11), the second "tenant" (key at count_at + 27, value
  // length at count_at + 33).
  std::string key_utf8 = m, key_order = m;
  key_utf8[count_at + 4] = static_cast<char>(0xff);
  key_utf8[count_at + 11] = 0x10;
  key_utf8[count_at + 12] = 0x01;
  key_order[count_at + 27] = 'a';
  key_order[count_at + 33] = 0x10;
  key_order[count_at + 34] = 0x01;
  struct Neg {
    std::string name, description, message, error;
    std::vector<std::string> keys;
    EncryptionContext expected_context;
    std::string expected_environment = "";
  };
  // Offsets into the AES framed message's header (docs/format.md section 4).
  const size_t frame_size_at = 4 + 1 + 2 + 32;
  const size_t env_at = frame_size_at + 4 + 1;  // first environment byte
  const size_t version_at = env_at + 7 + 2 + 20;
  const size_t data_key_count_at = [&] {
    std::string authenticated;
    StringInputStream in(m);
    format::Header hd = Must(format::ReadHeader(in, &authenticated));
    return authenticated.size() - 32 -
           (1 + hd.data_keys[0].provider_id.size() + 2 +
            hd.data_keys[0].provider_info.size() + 2 +
            hd.data_keys[0].ciphertext.size()) - 1;
  }();
  auto with = [&](size_t at, std::initializer_list<uint8_t> bytes) {
    std::string x = m;
    size_t i = at;
    for (uint8_t b : bytes) x[i++] = static_cast<char>(b);
    return x;
  };
  // A header past 64 KiB: 64 context entries of 1 KiB values.
  std::string huge_header = m.substr(0, count_at);
  format::AppendBigEndian(&huge_header, 64, 2);
  for (int i = 0; i < 64; ++i) {
    const std::string key = absl::StrCat("k", i < 10 ? "0" : "", i);
    format::AppendBigEndian(&huge_header, key.size(), 2);
    huge_header += key;
    format::AppendBigEndian(&huge_header, 1024, 2);
    huge_header += std::string(1024, 'v');
  }
  // The final frame of the AES framed message starts after three regular
  // frames; its length field follows the type byte.
  const size_t final_at = h + 3 * regular;
  // One data key entry replaced by a wrap of a different data key, in a
  // message whose other entry is intact.
  std::string forged_two;
  {
    std::string authenticated;
    StringInputStream in(two_keys_message);
    format::Header hd = Must(format::ReadHeader(in, &authenticated));
    SecretData other = SecretData::CopyFrom(Bytes(0xa0, 32));
    hd.data_keys[0] =
        Must(k1.keyring->WrapDataKey(other, hd.context)).encrypted;
    forged_two = Must(format::SerializeAuthenticatedHeader(hd)) + hd.tag +
                 two_keys_message.substr(authenticated.size() + 16);
  }
  const std::string& cm = chacha_frames_message;
  const size_t ch = Must(InspectMessage(cm)).header_bytes;
  std::string chacha_flip = cm;
  chacha_flip[ch + regular + 3] ^= 0x01;
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
      {"frame-size-below-minimum", "frame size 63", with(frame_size_at, {0, 0, 0, 63}),
       "limit-exceeded", {"k1"}, {}},
      {"frame-size-above-maximum", "frame size 16 MiB + 1",
       with(frame_size_at, {0x01, 0x00, 0x00, 0x01}), "limit-exceeded",
       {"k1"}, {}},
      {"header-over-64-kib",
       "64 context entries of 1 KiB values push the header past 65536 bytes",
       huge_header, "limit-exceeded", {"k1"}, {}},
      {"environment-bad-character", "environment \"Offline\" (upper case)",
       with(env_at, {'O'}), "malformed-header", {"k1"}, {}},
      {"key-version-zero", "key version 0", with(version_at, {0, 0, 0, 0}),
       "malformed-header", {"k1"}, {}},
      {"context-invalid-utf8", "a context value byte replaced by 0xff",
       with(m.find("acme"), {0xff}), "malformed-header", {"k1"}, {}},
      {"data-key-count-zero", "data key count 0", with(data_key_count_at, {0}),
       "malformed-header", {"k1"}, {}},
      {"data-key-count-over-limit", "data key count 17",
       with(data_key_count_at, {17}), "limit-exceeded", {"k1"}, {}},
      {"final-length-above-frame-size", "the final frame claims 65 bytes",
       with(final_at + 1, {0, 0, 0, 65}), "malformed-frame", {"k1"}, {}},
      {"truncated-inside-final-length",
       "the message ends inside the final frame's length field",
       m.substr(0, final_at + 3), "truncated", {"k1"}, {}},
      {"environment-mismatch", "the reader expects environment production", m,
       "environment-mismatch", {"k1"}, {}, "production"},
      {"commitment-mismatch-other-entry-intact",
       "k1's entry wraps a different data key; k2's is intact, so k2 opens "
       "the data key, but the header tag (which covers k1's entry) fails",
       forged_two, "authentication-failed", {"k1", "k2"}, {}},
      {"commitment-mismatch-only-forged-entry-usable",
       "the same message read with k1 only: its entry fails the commitment",
       forged_two, "commitment-mismatch", {"k1"}, {}},
      {"chacha-flipped-frame", "ChaCha20-Poly1305: one bit of frame 2 flipped",
       chacha_flip, "authentication-failed", {"k1"}, {}},
      {"chacha-missing-final-frame",
       "ChaCha20-Poly1305: the final frame was cut off",
       cm.substr(0, ch + 3 * regular), "truncated", {"k1"}, {}},
      {"context-key-invalid-utf8-before-oversized-value",
       "the first context key is not UTF-8 and its value announces 4097 bytes: the key is "
       "checked when it is read, before its value, so the error is the key's",
       key_utf8, "malformed-header", {"k1"}, {}},
      {"context-key-unsorted-before-oversized-value",
       "the second context key (\"aenant\") sorts before the first and its value announces "
       "4097 bytes: the order is checked when the key is read, before its value",
       key_order, "malformed-header", {"k1"}, {}},
  };
  Json neg = Json::array();
  for (const Neg& n : negs) {
    neg.push_back({{"name", n.name},
                   {"description", n.description},
                   {"raw_keys", n.keys},
                   {"expected_context", ContextJson(n.expected_context)},
                   {"expected_environment", n.expected_environment},
                   {"message", Hex(n.message)},
                   {"expected_error", n.error}});
  }
  WriteNew(dir + "/negative.json",
           {{"format", "keyward message v1"},
            {"note", "Frozen. Each message must fail to decrypt with "
                     "expected_error (keyward::ErrorCodeName) using the listed "
                     "raw keys from aes-256-gcm.json, the expected_context "
                     "pairs, and expected_environment when not empty."},
            {"vectors", neg}});
  return WriteSignedVectors(dir, keys, k1, k2, ctx, unicode);
}

}  // namespace
}  // namespace keyward

int main(int argc, char** argv) { return keyward::Main(argc, argv); }

#include "keyward/message.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/signature.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/errors.h"
#include "keyward/raw_aes_keyring.h"
#include "testing/keyrings.h"
#include "testing/status_matchers.h"

namespace keyward {
namespace {

using ::keyward::testing::IsOk;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

MATCHER_P(HasErrorCode, code,
          absl::StrCat("has Keyward error code ", ErrorCodeName(code))) {
  const absl::Status& status = ::keyward::testing::GetStatus(arg);
  *result_listener << "status is " << status;
  return GetErrorCode(status) == code;
}

std::unique_ptr<RawAesKeyring> NewKeyring() {
  auto k = RawAesKeyring::Generate();
  EXPECT_TRUE(k.ok());
  return std::move(*k);
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return s;
}

// Hands out input in small, irregular pieces, to exercise every boundary.
class TrickleInputStream final : public InputStream {
 public:
  explicit TrickleInputStream(absl::string_view data) : data_(data) {}
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer) override {
    size_t n = std::min({buffer.size(), data_.size(), 1 + (calls_++ % 7)});
    std::memcpy(buffer.data(), data_.data(), n);
    data_.remove_prefix(n);
    consumed_ += n;
    return n;
  }
  size_t consumed() const { return consumed_; }

 private:
  absl::string_view data_;
  size_t calls_ = 0;
  size_t consumed_ = 0;
};

struct SuiteCase {
  Suite suite;
  const char* name;
};

class MessageTest : public ::testing::TestWithParam<SuiteCase> {
 protected:
  EncryptOptions Options(uint32_t frame_size = 64) {
    EncryptOptions o;
    o.suite = GetParam().suite;
    o.frame_size = frame_size;
    return o;
  }
  std::unique_ptr<RawAesKeyring> key_ = NewKeyring();
  testing::Keyrings keyrings_{key_.get()};
  EncryptionContext context_{{"tenant", "acme"}, {"table", "cards"}};
};

TEST_P(MessageTest, RoundTripsAtFrameBoundaries) {
  for (size_t size : {0, 1, 63, 64, 65, 128, 129, 1000}) {
    const std::string plaintext = Pattern(size);
    KW_ASSERT_OK_AND_ASSIGN(
        std::string message,
        EncryptMessage(plaintext, context_, keyrings_, Options()));
    KW_ASSERT_OK_AND_ASSIGN(SecretData back,
                            DecryptMessage(message, keyrings_));
    EXPECT_EQ(back.AsStringView(), plaintext) << size;
    KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(message));
    EXPECT_EQ(info.plaintext_bytes, size);
    EXPECT_EQ(info.frames, std::max<size_t>(1, (size + 63) / 64));
    EXPECT_EQ(info.total_bytes, message.size());
    EXPECT_EQ(info.suite, GetParam().suite);
    // A signed message's context also carries its signing key.
    EncryptionContext shown = info.context;
    EXPECT_EQ(shown.erase(kSigningKeyContextKey), IsSignedSuite(GetParam().suite) ? 1u : 0u);
    EXPECT_EQ(shown, context_);
  }
}

TEST_P(MessageTest, StreamsWithIrregularReads) {
  const std::string plaintext = Pattern(10'000);
  std::string message;
  {
    TrickleInputStream in(plaintext);
    StringOutputStream out(&message);
    KW_ASSERT_OK(EncryptStream(in, out, context_, keyrings_, Options(256)));
  }
  std::string back;
  TrickleInputStream in(message);
  StringOutputStream out(&back);
  KW_ASSERT_OK(DecryptStream(in, out, keyrings_));
  EXPECT_EQ(back, plaintext);
  // Stream and bytes forms produce the same structure.
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(message));
  EXPECT_EQ(info.frames, (10'000 + 255) / 256u);
}

// Memory is bounded by the frame size: the decryptor releases the first
// frame's plaintext after reading no more than the header, that frame and
// its fixed read-ahead (64 KiB), however long the message.
TEST_P(MessageTest, DecryptStreamReleasesFramesAsTheyVerify) {
  const std::string plaintext = Pattern(64 * 4000);
  KW_ASSERT_OK_AND_ASSIGN(
      std::string message,
      EncryptMessage(plaintext, context_, keyrings_, Options()));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(message));

  class RecordingSink final : public OutputStream {
   public:
    explicit RecordingSink(const TrickleInputStream* in) : in_(in) {}
    absl::Status Write(absl::string_view data) override {
      consumed_at_write.push_back(in_->consumed());
      sizes.push_back(data.size());
      return absl::OkStatus();
    }
    const TrickleInputStream* in_;
    std::vector<size_t> consumed_at_write, sizes;
  };
  TrickleInputStream in(message);
  RecordingSink sink(&in);
  KW_ASSERT_OK(DecryptStream(in, sink, keyrings_));
  ASSERT_EQ(sink.sizes.size(), 4000u);
  EXPECT_LE(sink.consumed_at_write[0],
            info.header_bytes + 1 + 64 + 16 + (64 << 10) + 8);
  EXPECT_LT(sink.consumed_at_write[0], message.size() / 3);
  for (size_t s : sink.sizes) EXPECT_LE(s, 64u);
}

TEST_P(MessageTest, EverySingleByteFlipFailsWithATypedError) {
  auto dr = NewKeyring();
  testing::Keyrings both{key_.get(), dr.get()};
  KW_ASSERT_OK_AND_ASSIGN(
      std::string message,
      EncryptMessage(Pattern(150), context_, both, Options()));
  for (size_t i = 0; i < message.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80}) {
      std::string bad = message;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      auto result = DecryptMessage(bad, keyrings_);
      ASSERT_FALSE(result.ok()) << "flip at byte " << i << " went unnoticed";
      EXPECT_NE(GetErrorCode(result.status()), ErrorCode::kNone)
          << "byte " << i << ": " << result.status();
    }
  }
}

TEST_P(MessageTest, DetectsTruncationAtEveryLength) {
  KW_ASSERT_OK_AND_ASSIGN(
      std::string message,
      EncryptMessage(Pattern(200), context_, keyrings_, Options()));
  for (size_t len = 0; len < message.size(); ++len) {
    auto result = DecryptMessage(message.substr(0, len), keyrings_);
    ASSERT_FALSE(result.ok()) << len;
    const ErrorCode code = GetErrorCode(result.status());
    if (len < 4) {
      EXPECT_EQ(code, ErrorCode::kNotAKeywardMessage) << len;
    } else {
      EXPECT_EQ(code, ErrorCode::kTruncated) << len << " " << result.status();
    }
  }
}

TEST_P(MessageTest, DetectsAppendedReorderedDuplicatedAndDroppedFrames) {
  KW_ASSERT_OK_AND_ASSIGN(
      std::string message,
      EncryptMessage(Pattern(64 * 3 + 10), context_, keyrings_, Options()));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(message));
  const size_t h = info.header_bytes;
  const size_t regular = 1 + 64 + 16;
  std::string header = message.substr(0, h);
  std::string f1 = message.substr(h, regular);
  std::string f2 = message.substr(h + regular, regular);
  std::string f3 = message.substr(h + 2 * regular, regular);
  std::string fin = message.substr(h + 3 * regular);
  ASSERT_EQ(header + f1 + f2 + f3 + fin, message);

  EXPECT_THAT(DecryptMessage(message + "x", keyrings_),
              HasErrorCode(ErrorCode::kTrailingData));
  EXPECT_THAT(DecryptMessage(message + message, keyrings_),
              HasErrorCode(ErrorCode::kTrailingData));
  EXPECT_THAT(DecryptMessage(header + f2 + f1 + f3 + fin, keyrings_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("frame 1 ")));
  EXPECT_THAT(DecryptMessage(header + f1 + f1 + f2 + f3 + fin, keyrings_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("frame 2 ")));
  EXPECT_THAT(DecryptMessage(header + f1 + f3 + fin, keyrings_),
              HasErrorCode(ErrorCode::kAuthenticationFailed));
  EXPECT_THAT(DecryptMessage(header + f1 + f2 + f3, keyrings_),
              HasErrorCode(ErrorCode::kTruncated));
  // A final frame of another message of the same key is refused too.
  KW_ASSERT_OK_AND_ASSIGN(
      std::string other,
      EncryptMessage(Pattern(64 * 3 + 10), context_, keyrings_, Options()));
  EXPECT_THAT(DecryptMessage(header + f1 + f2 + f3 + other.substr(h + 3 * regular), keyrings_),
              HasErrorCode(ErrorCode::kAuthenticationFailed));
}

TEST_P(MessageTest, ContextEnvironmentAndKeyringChecks) {
  KW_ASSERT_OK_AND_ASSIGN(
      std::string message,
      EncryptMessage("payload", context_, keyrings_, Options()));
  DecryptOptions expect;
  expect.expected_context = {{"tenant", "acme"}};
  EXPECT_THAT(DecryptMessage(message, keyrings_, expect), IsOk());
  expect.expected_context = {{"tenant", "globex"}};
  EXPECT_THAT(DecryptMessage(message, keyrings_, expect),
              HasErrorCode(ErrorCode::kContextMismatch));
  expect.expected_context = {{"region", "eu"}};
  EXPECT_THAT(DecryptMessage(message, keyrings_, expect),
              HasErrorCode(ErrorCode::kContextMismatch));

  DecryptOptions env;
  env.expected_environment = "production";
  EXPECT_THAT(DecryptMessage(message, keyrings_, env),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("'offline'")));
  EXPECT_THAT(DecryptMessage(message, keyrings_, env),
              HasErrorCode(ErrorCode::kEnvironmentMismatch));

  auto stranger = NewKeyring();
  testing::Keyrings wrong{stranger.get()};
  EXPECT_THAT(DecryptMessage(message, wrong),
              HasErrorCode(ErrorCode::kNoKeyringCouldUnwrap));
}

TEST_P(MessageTest, CommitmentBindsTheDataKey) {
  // Replace the wrapped data key with a wrap of a different data key under
  // the same raw key: it unwraps fine, but must not be accepted.
  KW_ASSERT_OK_AND_ASSIGN(
      std::string message,
      EncryptMessage("payload", context_, keyrings_, Options()));
  std::string authenticated;
  StringInputStream in(message);
  KW_ASSERT_OK_AND_ASSIGN(format::Header h, format::ReadHeader(in, &authenticated));
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey other, key_->GenerateDataKey(h.context));
  h.data_keys[0] = other.encrypted;
  KW_ASSERT_OK_AND_ASSIGN(std::string forged_header,
                          format::SerializeAuthenticatedHeader(h));
  std::string forged = forged_header + h.tag +
                       message.substr(authenticated.size() + h.tag.size());
  EXPECT_THAT(DecryptMessage(forged, keyrings_),
              HasErrorCode(ErrorCode::kCommitmentMismatch));
}

TEST_P(MessageTest, RewrapReplacesOnlyTheHeader) {
  auto dr = NewKeyring();
  auto next = NewKeyring();
  testing::Keyrings at_encrypt{key_.get(), dr.get()};
  KW_ASSERT_OK_AND_ASSIGN(
      std::string message,
      EncryptMessage(Pattern(300), context_, at_encrypt, Options()));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo before, InspectMessage(message));

  testing::Keyrings from{key_.get()}, to{next.get()};
  KW_ASSERT_OK_AND_ASSIGN(std::string rewrapped,
                          RewrapMessage(message, from, to));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo after, InspectMessage(rewrapped));
  // Same body, byte for byte.
  EXPECT_EQ(rewrapped.substr(after.header_bytes),
            message.substr(before.header_bytes));
  EXPECT_EQ(after.message_id, before.message_id);
  EXPECT_EQ(after.key.key_name, absl::StrCat("raw/", next->key_id()));
  ASSERT_EQ(after.data_keys.size(), 2u);  // new key + kept DR entry
  EXPECT_EQ(after.data_keys[1].provider_info, dr->key_id());

  testing::Keyrings only_next{next.get()}, only_dr{dr.get()};
  KW_ASSERT_OK_AND_ASSIGN(SecretData a, DecryptMessage(rewrapped, only_next));
  EXPECT_EQ(a.AsStringView(), Pattern(300));
  EXPECT_THAT(DecryptMessage(rewrapped, only_dr), IsOk());
  EXPECT_THAT(DecryptMessage(rewrapped, keyrings_),
              HasErrorCode(ErrorCode::kNoKeyringCouldUnwrap));
  // Rewrap with a keyring that cannot open the message changes nothing.
  EXPECT_THAT(RewrapMessage(message, to, to),
              HasErrorCode(ErrorCode::kNoKeyringCouldUnwrap));
}

TEST_P(MessageTest, VerifyHeaderOpensTheHeaderWithoutTheBody) {
  KW_ASSERT_OK_AND_ASSIGN(std::string message,
                          EncryptMessage(Pattern(300), context_, keyrings_, Options()));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(message));
  KW_EXPECT_OK(VerifyHeader(message, keyrings_));
  KW_EXPECT_OK(VerifyHeader(message.substr(0, info.header_bytes), keyrings_));
  auto other = NewKeyring();
  testing::Keyrings wrong{other.get()};
  EXPECT_THAT(VerifyHeader(message, wrong), HasErrorCode(ErrorCode::kNoKeyringCouldUnwrap));
  for (size_t i : {size_t{5}, info.header_bytes / 2, info.header_bytes - 1}) {
    std::string tampered = message;
    tampered[i] ^= 0x01;
    EXPECT_FALSE(VerifyHeader(tampered, keyrings_).ok()) << i;
  }
}

// A keyring that claims every entry and unwraps it to a fixed, wrong key:
// what a buggy or hostile verifier would look like.
class WrongKeyKeyring final : public Keyring {
 public:
  absl::StatusOr<GeneratedDataKey> GenerateDataKey(const EncryptionContext&) const override {
    return absl::UnimplementedError("no");
  }
  absl::StatusOr<WrappedDataKey> WrapDataKey(const SecretData&,
                                             const EncryptionContext&) const override {
    return absl::UnimplementedError("no");
  }
  absl::StatusOr<SecretData> UnwrapDataKey(const EncryptedDataKey&,
                                           const EncryptionContext&) const override {
    return SecretData::CopyFrom(std::string(32, 'w'));
  }
  bool Owns(const EncryptedDataKey&) const override { return false; }
};

TEST_P(MessageTest, RewrapMessageVerifiedChecksTheNewHeaderBeforeReturningIt) {
  const std::string plaintext = Pattern(5000);
  KW_ASSERT_OK_AND_ASSIGN(std::string message,
                          EncryptMessage(plaintext, context_, keyrings_, Options()));
  auto next = NewKeyring();
  testing::Keyrings to{next.get()};
  KW_ASSERT_OK_AND_ASSIGN(std::string moved,
                          RewrapMessageVerified(message, keyrings_, to, to));
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, DecryptMessage(moved, to));
  EXPECT_EQ(back.AsStringView(), plaintext);
  // Same bytes as the unverified rewrap would give, apart from the random
  // parts of the new wrapped key.
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo before, InspectMessage(message));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo after, InspectMessage(moved));
  EXPECT_EQ(after.message_id, before.message_id);
  EXPECT_EQ(moved.substr(after.header_bytes), message.substr(before.header_bytes));
  // A verifier that cannot open the new entry, or opens it to another key:
  // refused, nothing returned.
  EXPECT_THAT(RewrapMessageVerified(message, keyrings_, to, keyrings_),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("no verifying keyring")));
  WrongKeyKeyring wrong;
  testing::Keyrings wrong_list{&wrong};
  EXPECT_THAT(RewrapMessageVerified(message, keyrings_, to, wrong_list),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("another data key")));
}

TEST_P(MessageTest, EncryptRefusesBadInput) {
  testing::Keyrings none;
  EXPECT_THAT(EncryptMessage("x", {}, none, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncryptMessage("x", {}, keyrings_, Options(63)),
              HasErrorCode(ErrorCode::kLimitExceeded));
  EncryptionContext big;
  for (int i = 0; i < 65; ++i) big[absl::StrCat("k", i)] = "v";
  EXPECT_THAT(EncryptMessage("x", big, keyrings_, Options()),
              HasErrorCode(ErrorCode::kLimitExceeded));
  EXPECT_THAT(EncryptMessage("x", {{"", "v"}}, keyrings_, Options()),
              HasErrorCode(ErrorCode::kMalformedHeader));
  EXPECT_THAT(EncryptMessage("x", {{"k", "\xff"}}, keyrings_, Options()),
              HasErrorCode(ErrorCode::kMalformedHeader));
}

INSTANTIATE_TEST_SUITE_P(
    Suites, MessageTest,
    ::testing::Values(SuiteCase{Suite::kAes256GcmHkdfSha256Commit, "AesGcm"},
                      SuiteCase{Suite::kChaCha20Poly1305HkdfSha256Commit,
                                "ChaCha"},
                      SuiteCase{Suite::kAes256GcmHkdfSha256CommitEcdsaP384, "Signed"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// --- The signed suite -------------------------------------------------------------

TEST(SignedMessageTest, TheSigningKeyTravelsInTheContextAndTheSignatureLast) {
  auto key = NewKeyring();
  testing::Keyrings keyrings{key.get()};
  EncryptOptions o;
  o.suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
  KW_ASSERT_OK_AND_ASSIGN(std::string m, EncryptMessage("hello", {{"t", "1"}}, keyrings, o));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(m));
  EXPECT_EQ(info.suite, Suite::kAes256GcmHkdfSha256CommitEcdsaP384);
  ASSERT_EQ(info.context.count(kSigningKeyContextKey), 1u);
  EXPECT_EQ(info.context.at(kSigningKeyContextKey).size(), 68u);  // base64 of 49 bytes
  EXPECT_GT(info.signature_bytes, 60u);
  EXPECT_EQ(info.total_bytes, m.size());
  // Each message has its own key pair.
  KW_ASSERT_OK_AND_ASSIGN(std::string m2, EncryptMessage("hello", {{"t", "1"}}, keyrings, o));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info2, InspectMessage(m2));
  EXPECT_NE(info.context.at(kSigningKeyContextKey), info2.context.at(kSigningKeyContextKey));
  DecryptOptions d;
  d.expected_context = {{"t", "1"}};
  d.require_signed = true;
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, DecryptMessage(m, keyrings, d));
  EXPECT_EQ(back.AsStringView(), "hello");
}

TEST(SignedMessageTest, TheReservedContextKeyCannotBeSetByCallers) {
  auto key = NewKeyring();
  testing::Keyrings keyrings{key.get()};
  for (Suite suite : {Suite::kAes256GcmHkdfSha256Commit,
                      Suite::kAes256GcmHkdfSha256CommitEcdsaP384}) {
    EncryptOptions o;
    o.suite = suite;
    EXPECT_THAT(EncryptMessage("x", {{kSigningKeyContextKey, "mine"}}, keyrings, o),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reserved")));
  }
}

TEST(SignedMessageTest, ReadersCanRequireSignedMessages) {
  auto key = NewKeyring();
  testing::Keyrings keyrings{key.get()};
  KW_ASSERT_OK_AND_ASSIGN(std::string plain, EncryptMessage("x", {}, keyrings));
  DecryptOptions d;
  d.require_signed = true;
  EXPECT_THAT(DecryptMessage(plain, keyrings, d), HasErrorCode(ErrorCode::kUnsupportedSuite));
}

// Whoever holds the data key cannot put another signing key in front of
// the wrapped data key: the keyring bound the original context (and so
// the original public key) into it.
TEST(SignedMessageTest, TheSigningKeyCannotBeSwappedByWhoeverHoldsTheDataKey) {
  auto key = NewKeyring();
  testing::Keyrings keyrings{key.get()};
  EncryptOptions o;
  o.suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
  KW_ASSERT_OK_AND_ASSIGN(std::string victim, EncryptMessage("pay 10", {}, keyrings, o));
  std::string authenticated;
  KW_ASSERT_OK_AND_ASSIGN(format::Header h, format::ParseHeader(victim, &authenticated));
  KW_ASSERT_OK_AND_ASSIGN(SecretData dek, key->UnwrapDataKey(h.data_keys[0], h.context));
  // The forger's own key pair, its public key in the context, the victim's
  // wrapped data key, the data key itself, and a new body.
  KW_ASSERT_OK_AND_ASSIGN(auto forger, crypto::EcdsaP384Signer::Generate());
  format::EncryptionMaterials m;
  m.suite = h.suite;
  m.frame_size = h.frame_size;
  m.key = h.key;
  m.context = h.context;
  m.context[kSigningKeyContextKey] = absl::Base64Escape(forger->public_key());
  m.data_keys = h.data_keys;
  m.data_key = &dek;
  m.signer = forger.get();
  KW_ASSERT_OK_AND_ASSIGN(std::string forged, format::EncryptBytesWithMaterials(m, "pay 1000"));
  EXPECT_THAT(DecryptMessage(forged, keyrings), HasErrorCode(ErrorCode::kNoKeyringCouldUnwrap));
  // Keeping the victim's context (and so its key) needs the victim's
  // private key: the encoder refuses another signer.
  m.context = h.context;
  EXPECT_THAT(format::EncryptBytesWithMaterials(m, "pay 1000"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MessageFormatTest, RejectsForeignAndFutureInput) {
  auto key = NewKeyring();
  testing::Keyrings keyrings{key.get()};
  EXPECT_THAT(DecryptMessage("", keyrings),
              HasErrorCode(ErrorCode::kNotAKeywardMessage));
  EXPECT_THAT(DecryptMessage("%PDF-1.7 not a message", keyrings),
              HasErrorCode(ErrorCode::kNotAKeywardMessage));
  KW_ASSERT_OK_AND_ASSIGN(std::string message,
                          EncryptMessage("x", {}, keyrings));
  std::string v2 = message;
  v2[4] = 2;
  EXPECT_THAT(DecryptMessage(v2, keyrings),
              HasErrorCode(ErrorCode::kUnsupportedVersion));
  std::string suite = message;
  suite[6] = 0x7f;
  EXPECT_THAT(DecryptMessage(suite, keyrings),
              HasErrorCode(ErrorCode::kUnsupportedSuite));
}

TEST(MessageFormatTest, ReaderRefusesOversizedFramesBeforeAllocating) {
  auto key = NewKeyring();
  testing::Keyrings keyrings{key.get()};
  EncryptOptions big;
  big.frame_size = 1 << 20;
  KW_ASSERT_OK_AND_ASSIGN(std::string message,
                          EncryptMessage("x", {}, keyrings, big));
  DecryptOptions strict;
  strict.max_frame_size = 64 << 10;
  EXPECT_THAT(DecryptMessage(message, keyrings, strict),
              HasErrorCode(ErrorCode::kLimitExceeded));
  EXPECT_THAT(DecryptMessage(message, keyrings), IsOk());
}

TEST(MessageFormatTest, HeaderCountsAboveLimitsAreRejected) {
  auto key = NewKeyring();
  testing::Keyrings keyrings{key.get()};
  KW_ASSERT_OK_AND_ASSIGN(std::string message,
                          EncryptMessage("x", {}, keyrings));
  // The context count follows the fixed fields and the key reference
  // ("offline", "raw/<16 hex>", version).
  const size_t ctx_count = 4 + 1 + 2 + 32 + 4 + 1 + 7 + 2 + 20 + 4;
  std::string bad = message;
  bad[ctx_count] = '\xff';
  bad[ctx_count + 1] = '\xff';
  EXPECT_THAT(DecryptMessage(bad, keyrings),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("encryption context entry count is 65535")));
  std::string frame = message;
  frame[4 + 1 + 2 + 32] = '\x7f';  // frame size ~2 GiB
  EXPECT_THAT(DecryptMessage(frame, keyrings),
              HasErrorCode(ErrorCode::kLimitExceeded));
}

}  // namespace
}  // namespace keyward

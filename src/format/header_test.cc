#include "format/header.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/errors.h"
#include "testing/status_matchers.h"

namespace keyward::format {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

Header SampleHeader() {
  Header h;
  h.suite = Suite::kChaCha20Poly1305HkdfSha256Commit;
  h.message_id = std::string(32, 'm');
  h.frame_size = 4096;
  h.key = {"dev", "payments/card-numbers", 7};
  h.context = {{"b", "2"}, {"a", ""}, {"\xc3\xa9t\xc3\xa9", "\xe2\x82\xac"}};
  h.data_keys = {{"kms", "payments/card-numbers@7", std::string(60, 'w')},
                 {"raw-aes", "0011223344556677", std::string(60, 'x')}};
  h.commitment = std::string(32, 'c');
  h.tag = std::string(16, 't');
  return h;
}

TEST(HeaderTest, SerializesAndParsesEveryField) {
  Header h = SampleHeader();
  KW_ASSERT_OK_AND_ASSIGN(std::string bytes, SerializeAuthenticatedHeader(h));
  std::string wire = bytes + h.tag + "BODY";
  StringInputStream in(wire);
  std::string authenticated;
  KW_ASSERT_OK_AND_ASSIGN(Header back, ReadHeader(in, &authenticated));
  EXPECT_EQ(authenticated, bytes);
  EXPECT_EQ(back.suite, h.suite);
  EXPECT_EQ(back.message_id, h.message_id);
  EXPECT_EQ(back.frame_size, h.frame_size);
  EXPECT_EQ(back.key.environment, "dev");
  EXPECT_EQ(back.key.key_name, "payments/card-numbers");
  EXPECT_EQ(back.key.key_version, 7u);
  EXPECT_EQ(back.context, h.context);
  ASSERT_EQ(back.data_keys.size(), 2u);
  EXPECT_EQ(back.data_keys[1].provider_info, "0011223344556677");
  EXPECT_EQ(back.commitment, h.commitment);
  EXPECT_EQ(back.tag, h.tag);
  // The parser stops exactly at the end of the header.
  uint8_t rest[4];
  KW_ASSERT_OK_AND_ASSIGN(size_t n, ReadFully(in, {rest, 4}));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(rest), n), "BODY");
}

// The in-memory parser and the stream parser agree on every input: the
// whole header, each of its prefixes (truncated, naming the same field) and
// each single-byte corruption.
TEST(HeaderTest, ParseHeaderAgreesWithReadHeader) {
  Header h = SampleHeader();
  KW_ASSERT_OK_AND_ASSIGN(std::string bytes, SerializeAuthenticatedHeader(h));
  const std::string wire = bytes + h.tag + "BODY";
  std::string authenticated;
  size_t header_size = 0;
  KW_ASSERT_OK_AND_ASSIGN(Header back, ParseHeader(wire, &authenticated, &header_size));
  EXPECT_EQ(authenticated, bytes);
  EXPECT_EQ(header_size, bytes.size() + h.tag.size());
  EXPECT_EQ(back.context, h.context);
  EXPECT_EQ(back.tag, h.tag);
  auto agree = [](const std::string& input) {
    StringInputStream in(input);
    std::string a1, a2;
    auto streamed = ReadHeader(in, &a1);
    auto parsed = ParseHeader(input, &a2);
    ASSERT_EQ(streamed.ok(), parsed.ok()) << parsed.status();
    if (!parsed.ok()) {
      EXPECT_EQ(streamed.status(), parsed.status());
    } else {
      EXPECT_EQ(a1, a2);
      EXPECT_EQ(streamed->data_keys.size(), parsed->data_keys.size());
    }
  };
  int truncated = 0;
  for (size_t n = 0; n < bytes.size() + h.tag.size(); ++n) {
    const std::string prefix = wire.substr(0, n);
    agree(prefix);
    std::string ignored;
    if (GetErrorCode(ParseHeader(prefix, &ignored).status()) == ErrorCode::kTruncated) {
      ++truncated;
    }
  }
  EXPECT_EQ(truncated, static_cast<int>(bytes.size() + h.tag.size()) - 4);  // all but the magic
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = wire;
    bad[i] ^= 0x5a;
    agree(bad);
  }
}

TEST(HeaderTest, ContextIsCanonical) {
  EXPECT_EQ(SerializeContext({{"b", "2"}, {"a", "1"}}),
            std::string("\x00\x02\x00\x01" "a" "\x00\x01" "1"
                        "\x00\x01" "b" "\x00\x01" "2", 14));
  // A header whose context keys are out of order is refused.
  Header h = SampleHeader();
  h.context = {{"a", "1"}, {"b", "2"}};
  KW_ASSERT_OK_AND_ASSIGN(std::string bytes, SerializeAuthenticatedHeader(h));
  const size_t pos = bytes.find(std::string("\x00\x01" "a", 3));
  ASSERT_NE(pos, std::string::npos);
  bytes[pos + 2] = 'c';  // now "c" precedes "b"
  std::string wire = bytes + h.tag;
  StringInputStream in(wire);
  std::string authenticated;
  EXPECT_THAT(ReadHeader(in, &authenticated),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("strictly increasing")));
}

TEST(HeaderTest, ValidatesNamesAndEnvironments) {
  KW_EXPECT_OK(ValidateKeyName("payments/card-numbers"));
  KW_EXPECT_OK(ValidateKeyName("a.b_c-D/e1"));
  for (const char* bad : {"", "/lead", "trail/", "a//b", "sp ace", "é"}) {
    EXPECT_THAT(ValidateKeyName(bad),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("key name")))
        << bad;
  }
  EXPECT_THAT(ValidateKeyName(std::string(257, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("over the limit")));
  KW_EXPECT_OK(ValidateEnvironment("production"));
  EXPECT_FALSE(ValidateEnvironment("Prod").ok());
  EXPECT_FALSE(ValidateEnvironment(std::string(33, 'a')).ok());
}

TEST(HeaderTest, MalformedFieldsAreNamed) {
  Header h = SampleHeader();
  h.data_keys.clear();
  EXPECT_THAT(SerializeAuthenticatedHeader(h),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("data key count is 0")));
  h = SampleHeader();
  h.key.key_version = 0;
  EXPECT_THAT(SerializeAuthenticatedHeader(h),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("key version")));
  h = SampleHeader();
  h.data_keys[0].provider_id = "KMS";
  EXPECT_THAT(SerializeAuthenticatedHeader(h),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("provider id")));
  h = SampleHeader();
  h.data_keys.resize(17, h.data_keys[0]);
  EXPECT_EQ(GetErrorCode(SerializeAuthenticatedHeader(h).status()),
            ErrorCode::kLimitExceeded);
}

}  // namespace
}  // namespace keyward::format

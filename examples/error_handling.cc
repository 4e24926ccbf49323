// The error handling a service should do around Keyward, shown on the
// failures it will meet.
//   error_handling CLIENT_CONFIG KEY_NAME OTHER_KEY_NAME
//
// Every call returns absl::Status(Or).  Decide on the canonical code, and
// use the Keyward code (keyward/errors.h) for the exact cause:
//   kUnavailable           keywardd unreachable (the SDK already retried),
//                          or its audit log is down: retry later, alert.
//   kPermissionDenied      the policy refuses this principal: a bug or an
//                          attack, never retry; alert.
//   kInvalidArgument       not a Keyward message / malformed: reject input.
//   kDataLoss              the message was altered or truncated: reject,
//                          and treat as tampering.
//   kFailedPrecondition    the message cannot be opened here: another key
//                          (key-mismatch), another context
//                          (context-mismatch), another environment, or a
//                          key version that was disabled.
//   kNotFound              no such key.
// A failed Decrypt returns no plaintext (a failed DecryptStream has written
// the frames that verified: see stream_file.cc).
#include <cstdio>
#include <string>

#include "keyward/data_client.h"
#include "keyward/encryptor.h"
#include "keyward/errors.h"

namespace {

// What the service does about a failure.
enum class Action { kRetryLater, kRejectInput, kTampered, kRefuse, kBug };

Action Classify(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:  // over this principal's share
      return Action::kRetryLater;
    case absl::StatusCode::kInvalidArgument:
      return Action::kRejectInput;
    case absl::StatusCode::kDataLoss:
      return Action::kTampered;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kNotFound:
      return Action::kRefuse;
    default:
      return Action::kBug;
  }
}

const char* Name(Action a) {
  switch (a) {
    case Action::kRetryLater: return "retry later";
    case Action::kRejectInput: return "reject the input";
    case Action::kTampered: return "reject: tampered";
    case Action::kRefuse: return "refuse";
    case Action::kBug: return "bug";
  }
  return "?";
}

// Prints how the service reacts; true when it is the reaction expected.
bool Expect(const char* what, const absl::Status& s, Action expected, keyward::ErrorCode code) {
  const Action got = s.ok() ? Action::kBug : Classify(s);
  std::printf("%-34s -> %-18s [%s] %s\n", what, Name(got),
              std::string(keyward::ErrorCodeName(keyward::GetErrorCode(s))).c_str(),
              std::string(s.message()).c_str());
  return !s.ok() && got == expected &&
         (code == keyward::ErrorCode::kNone || keyward::GetErrorCode(s) == code);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return std::fprintf(stderr, "usage: error_handling CONFIG KEY OTHER_KEY\n"), 2;
  auto options = keyward::LoadClientConfig(argv[1]);
  if (!options.ok()) return std::fprintf(stderr, "%s\n", options.status().ToString().c_str()), 1;
  auto client = keyward::DataClient::Connect(*options);
  if (!client.ok()) return std::fprintf(stderr, "%s\n", client.status().ToString().c_str()), 1;
  auto cards = keyward::Encryptor::Create(*client, {.key_name = argv[2]});
  auto other = keyward::Encryptor::Create(*client, {.key_name = argv[3]});
  if (!cards.ok() || !other.ok()) return std::fprintf(stderr, "cannot create encryptors\n"), 1;

  auto message = (*cards)->Encrypt("4111 1111 1111 1111", {{"customer", "42"}});
  auto foreign = (*other)->Encrypt("a record under the other key", {{"customer", "42"}});
  if (!message.ok() || !foreign.ok()) return std::fprintf(stderr, "cannot encrypt\n"), 1;
  std::string tampered = *message;
  tampered[tampered.size() - 3] ^= 0x01;

  using keyward::ErrorCode;
  bool ok = true;
  ok &= Expect("altered message", (*cards)->Decrypt(tampered).status(), Action::kTampered,
               ErrorCode::kAuthenticationFailed);
  ok &= Expect("truncated message",
               (*cards)->Decrypt(message->substr(0, message->size() - 10)).status(),
               Action::kTampered, ErrorCode::kTruncated);
  ok &= Expect("not a message", (*cards)->Decrypt("hello").status(), Action::kRejectInput,
               ErrorCode::kNotAKeywardMessage);
  ok &= Expect("another customer's context",
               (*cards)->Decrypt(*message, {{"customer", "43"}}).status(), Action::kRefuse,
               ErrorCode::kContextMismatch);
  ok &= Expect("a context with pairs not expected",
               (*cards)->Decrypt(*message, {}).status(), Action::kRefuse,
               ErrorCode::kContextMismatch);
  ok &= Expect("a message under another key", (*cards)->Decrypt(*foreign).status(),
               Action::kRefuse, ErrorCode::kKeyMismatch);
  auto missing = keyward::Encryptor::Create(*client, {.key_name = "no/such/key"});
  ok &= missing.ok() && Expect("a key that does not exist",
                               (*missing)->Encrypt("x", {}).status(), Action::kRefuse,
                               ErrorCode::kNone);
  auto opened = (*cards)->Decrypt(*message, {{"customer", "42"}});
  std::printf("%-34s -> %s\n", "the genuine message", opened.ok() ? "ok" : "FAILED");
  return ok && opened.ok() ? 0 : 1;
}

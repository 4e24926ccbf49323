// Fuzzes the header parsers and the frame walker (InspectStream): any input
// must produce a header or a typed error, never a crash or a large
// allocation, and the in-memory parser must agree with the stream parser.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "format/header.h"
#include "keyward/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  auto info = keyward::InspectMessage(input);
  (void)info;
  std::string a1, a2;
  keyward::StringInputStream in(input);
  auto streamed = keyward::format::ReadHeader(in, &a1);
  auto parsed = keyward::format::ParseHeader(input, &a2);
  if (streamed.ok() != parsed.ok() || (parsed.ok() && a1 != a2)) std::abort();
  return 0;
}

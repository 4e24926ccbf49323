// Fuzzes the header parser and the frame walker (InspectStream): any input
// must produce a header or a typed error, never a crash or a large
// allocation.
#include <cstddef>
#include <cstdint>

#include "keyward/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto info = keyward::InspectMessage(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  (void)info;
  return 0;
}

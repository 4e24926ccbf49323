// The Keyward release this library belongs to.
#ifndef KEYWARD_VERSION_H_
#define KEYWARD_VERSION_H_

namespace keyward {
inline constexpr char kVersion[] = "0.1.0";
}  // namespace keyward

#endif  // KEYWARD_VERSION_H_

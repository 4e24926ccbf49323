// What the table jobs need from a FieldEncryptor beyond its public API:
// its data keys (to rotate them and to tell current values from old ones).
#ifndef KEYWARD_FIELDS_ENCRYPTOR_ACCESS_H_
#define KEYWARD_FIELDS_ENCRYPTOR_ACCESS_H_

#include "fields/field_keys.h"
#include "fields/searchable.h"
#include "keyward/field_encryptor.h"

namespace keyward::fields {

struct EncryptorAccess {
  static FieldKeys& Keys(FieldEncryptor& encryptor);
  static Searchable& Search(FieldEncryptor& encryptor);
};

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_ENCRYPTOR_ACCESS_H_

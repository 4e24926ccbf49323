// Between the core's types and the API's protobuf messages.
#ifndef KEYWARD_SERVER_CONVERT_H_
#define KEYWARD_SERVER_CONVERT_H_

#include "google/protobuf/map.h"
#include "keystore/key_model.h"
#include "keyward/keyring.h"
#include "keyward/v1/keyward.pb.h"

namespace keyward::server {

void ToProto(const keystore::Key& key, v1::Key* out);
void ToProto(const KeyReference& ref, v1::KeyReference* out);
EncryptionContext FromProto(
    const google::protobuf::Map<std::string, std::string>& context);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_CONVERT_H_

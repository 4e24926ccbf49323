// gRPC byte buffers of raw-registered methods (server/byte_buffers.h).
#include "server/byte_buffers.h"

#include <openssl/crypto.h>

#include <vector>

namespace keyward::server {
namespace {

// The serialized response of a call whose response holds secrets is in a
// buffer keywardd owns and wipes when gRPC releases it.
void WipeAndFree(void* p, size_t len) {
  OPENSSL_cleanse(p, len);
  ::operator delete(p);
}

}  // namespace

grpc::ByteBuffer Serialize(const google::protobuf::Message& m, bool secret) {
  const size_t size = m.ByteSizeLong();
  if (!secret) {
    grpc::Slice slice(size);
    m.SerializeWithCachedSizesToArray(const_cast<uint8_t*>(slice.begin()));
    return grpc::ByteBuffer(&slice, 1);
  }
  void* buf = ::operator new(size == 0 ? 1 : size);
  m.SerializeWithCachedSizesToArray(static_cast<uint8_t*>(buf));
  grpc::Slice slice(buf, size, &WipeAndFree);
  return grpc::ByteBuffer(&slice, 1);
}

std::string Flatten(const grpc::ByteBuffer& bb) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!bb.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

void WipeString(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

}  // namespace keyward::server

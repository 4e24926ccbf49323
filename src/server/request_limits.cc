#include "server/request_limits.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "keyward/errors.h"
#include "keyward/v1/keyward.pb.h"

namespace keyward::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::io::CodedInputStream;
using WireType = google::protobuf::internal::WireFormatLite::WireType;
using google::protobuf::internal::WireFormatLite;

absl::Status OverLimit(absl::string_view what) {
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kLimitExceeded,
                   absl::StrCat("request refused before it was read: ", what,
                                " (limits: docs/security.md)"));
}

absl::Status Malformed(const Descriptor& top) {
  return absl::InvalidArgumentError(
      absl::StrCat("the request is not a valid ", top.full_name(),
                   " message (protobuf wire format); use a Keyward client"));
}

class Scanner {
 public:
  Scanner(CodedInputStream& in, const Descriptor& top, const WireLimits& limits,
          RequestShape* shape)
      : in_(in), top_(top), limits_(limits), shape_(shape) {}

  absl::Status Message(const Descriptor& d, int depth) {
    if (depth > limits_.max_depth) {
      return OverLimit(absl::StrCat("messages nested deeper than ", limits_.max_depth));
    }
    // Occurrences per field number in this message: a message type has a
    // handful of fields, so a small vector beats a map.
    std::vector<std::pair<int, uint32_t>> seen;
    int unknown = 0;
    for (;;) {
      const uint32_t tag = in_.ReadTag();
      if (tag == 0) {
        // The end of this message's bytes, or bytes that are not a tag.
        return in_.ConsumedEntireMessage() ? absl::OkStatus() : Malformed(top_);
      }
      if (++shape_->elements > limits_.max_elements) {
        return OverLimit(absl::StrCat("more than ", limits_.max_elements,
                                      " fields and items in one request"));
      }
      const int number = WireFormatLite::GetTagFieldNumber(tag);
      const WireType wire = WireFormatLite::GetTagWireType(tag);
      const FieldDescriptor* f = d.FindFieldByNumber(number);
      if (f == nullptr) {
        if (++unknown > limits_.max_unknown_fields) {
          return OverLimit(absl::StrCat("more than ", limits_.max_unknown_fields,
                                        " unknown fields in ", d.full_name()));
        }
        KW_RETURN_IF_ERROR(SkipValue(wire, d));
        continue;
      }
      const FieldLimits fl = LimitsOf(*f);
      uint32_t& count = Count(seen, number);
      ++count;
      if (f->is_repeated()) {
        const uint32_t max = fl.max_items == 0 ? kUndeclaredItems : fl.max_items;
        if (count > max) {
          return OverLimit(absl::StrCat(f->full_name(), " has more than ", max,
                                        f->is_map() ? " entries" : " items"));
        }
      } else if (count > 1) {
        // Serializers write a singular field once; a repeated singular field
        // only makes the parser do work that is thrown away.
        return OverLimit(absl::StrCat(f->full_name(), " appears more than once"));
      }
      KW_RETURN_IF_ERROR(Field(*f, fl, wire, depth));
    }
  }

 private:
  // Where a field declares nothing (keyward.proto's test keeps this from
  // happening): small, so that forgetting a limit fails safe.
  static constexpr uint32_t kUndeclaredItems = 64;
  static constexpr uint32_t kUndeclaredBytes = 256;

  static uint32_t& Count(std::vector<std::pair<int, uint32_t>>& seen, int number) {
    for (auto& [n, c] : seen) {
      if (n == number) return c;
    }
    seen.emplace_back(number, 0);
    return seen.back().second;
  }

  absl::Status SkipValue(WireType wire, const Descriptor& d) {
    switch (wire) {
      case WireFormatLite::WIRETYPE_VARINT: {
        uint64_t v;
        return in_.ReadVarint64(&v) ? absl::OkStatus() : Malformed(top_);
      }
      case WireFormatLite::WIRETYPE_FIXED64:
        return in_.Skip(8) ? absl::OkStatus() : Malformed(top_);
      case WireFormatLite::WIRETYPE_FIXED32:
        return in_.Skip(4) ? absl::OkStatus() : Malformed(top_);
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
        uint32_t len;
        if (!in_.ReadVarint32(&len)) return Malformed(top_);
        if (len > limits_.max_unknown_field_bytes) {
          return OverLimit(absl::StrCat("an unknown field of ", d.full_name(), " is over ",
                                        limits_.max_unknown_field_bytes, " bytes"));
        }
        shape_->bytes += len;
        return in_.Skip(static_cast<int>(len)) ? absl::OkStatus() : Malformed(top_);
      }
      default:
        return Malformed(top_);  // groups: never part of this API
    }
  }

  absl::Status Field(const FieldDescriptor& f, const FieldLimits& fl, WireType wire,
                     int depth) {
    if (wire != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      return SkipValue(wire, *f.containing_type());
    }
    uint32_t len;
    if (!in_.ReadVarint32(&len)) return Malformed(top_);
    switch (f.type()) {
      case FieldDescriptor::TYPE_STRING:
      case FieldDescriptor::TYPE_BYTES: {
        const uint32_t max = fl.max_bytes == 0 ? kUndeclaredBytes : fl.max_bytes;
        if (len > max) {
          return OverLimit(absl::StrCat(f.full_name(), " is over ", max, " bytes"));
        }
        return in_.Skip(static_cast<int>(len)) ? absl::OkStatus() : Malformed(top_);
      }
      case FieldDescriptor::TYPE_MESSAGE: {
        const CodedInputStream::Limit limit = in_.PushLimit(static_cast<int>(len));
        absl::Status s = f.is_map() ? MapEntry(f, fl) : Message(*f.message_type(), depth + 1);
        if (s.ok() && in_.BytesUntilLimit() != 0) s = Malformed(top_);
        in_.PopLimit(limit);
        return s;
      }
      default:
        // A packed repeated scalar: each value is one item.
        return Packed(f, fl, len);
    }
  }

  absl::Status MapEntry(const FieldDescriptor& map, const FieldLimits& fl) {
    for (;;) {
      const uint32_t tag = in_.ReadTag();
      if (tag == 0) return in_.ConsumedEntireMessage() ? absl::OkStatus() : Malformed(top_);
      if (++shape_->elements > limits_.max_elements) {
        return OverLimit(absl::StrCat("more than ", limits_.max_elements,
                                      " fields and items in one request"));
      }
      const int number = WireFormatLite::GetTagFieldNumber(tag);
      const WireType wire = WireFormatLite::GetTagWireType(tag);
      const FieldDescriptor* part = map.message_type()->FindFieldByNumber(number);
      if (part == nullptr || wire != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        KW_RETURN_IF_ERROR(SkipValue(wire, *map.message_type()));
        continue;
      }
      uint32_t len;
      if (!in_.ReadVarint32(&len)) return Malformed(top_);
      uint32_t max = number == 1 ? fl.max_key_bytes : fl.max_value_bytes;
      if (max == 0) max = kUndeclaredBytes;
      if (len > max) {
        return OverLimit(absl::StrCat("a ", number == 1 ? "key" : "value", " of ",
                                      map.full_name(), " is over ", max, " bytes"));
      }
      if (!in_.Skip(static_cast<int>(len))) return Malformed(top_);
    }
  }

  absl::Status Packed(const FieldDescriptor& f, const FieldLimits& fl, uint32_t len) {
    const uint32_t max = fl.max_items == 0 ? kUndeclaredItems : fl.max_items;
    uint32_t items = 0;
    switch (f.type()) {
      case FieldDescriptor::TYPE_FIXED32:
      case FieldDescriptor::TYPE_SFIXED32:
      case FieldDescriptor::TYPE_FLOAT:
        items = len / 4;
        if (!in_.Skip(static_cast<int>(len))) return Malformed(top_);
        break;
      case FieldDescriptor::TYPE_FIXED64:
      case FieldDescriptor::TYPE_SFIXED64:
      case FieldDescriptor::TYPE_DOUBLE:
        items = len / 8;
        if (!in_.Skip(static_cast<int>(len))) return Malformed(top_);
        break;
      default: {
        // Varints: each ends with a byte below 0x80.
        uint32_t left = len;
        while (left > 0) {
          const void* data;
          int size;
          if (!in_.GetDirectBufferPointer(&data, &size) || size <= 0) return Malformed(top_);
          const uint32_t n = std::min(left, static_cast<uint32_t>(size));
          const auto* p = static_cast<const uint8_t*>(data);
          for (uint32_t i = 0; i < n; ++i) items += (p[i] & 0x80) == 0 ? 1 : 0;
          in_.Skip(static_cast<int>(n));
          left -= n;
        }
      }
    }
    shape_->elements += items;
    if (items > max) return OverLimit(absl::StrCat(f.full_name(), " has more than ", max, " items"));
    if (shape_->elements > limits_.max_elements) {
      return OverLimit(absl::StrCat("more than ", limits_.max_elements,
                                    " fields and items in one request"));
    }
    return absl::OkStatus();
  }

  CodedInputStream& in_;
  const Descriptor& top_;
  const WireLimits& limits_;
  RequestShape* const shape_;
};

void CollectUnlimited(const Descriptor& d, std::vector<const Descriptor*>& visited,
                      std::vector<std::string>& out) {
  for (const Descriptor* v : visited) {
    if (v == &d) return;
  }
  visited.push_back(&d);
  for (int i = 0; i < d.field_count(); ++i) {
    const FieldDescriptor& f = *d.field(i);
    const FieldLimits fl = LimitsOf(f);
    const std::string name = absl::StrCat(d.name(), ".", f.name());
    if (f.is_map()) {
      const FieldDescriptor& key = *f.message_type()->map_key();
      const FieldDescriptor& value = *f.message_type()->map_value();
      const bool key_grows = key.type() == FieldDescriptor::TYPE_STRING;
      const bool value_grows = value.type() == FieldDescriptor::TYPE_STRING ||
                               value.type() == FieldDescriptor::TYPE_BYTES;
      if (fl.max_items == 0 || (key_grows && fl.max_key_bytes == 0) ||
          (value_grows && fl.max_value_bytes == 0)) {
        out.push_back(name);
      }
      continue;
    }
    if (f.is_repeated() && fl.max_items == 0) out.push_back(name);
    if ((f.type() == FieldDescriptor::TYPE_STRING || f.type() == FieldDescriptor::TYPE_BYTES) &&
        fl.max_bytes == 0) {
      out.push_back(name);
    }
    if (f.type() == FieldDescriptor::TYPE_MESSAGE) {
      CollectUnlimited(*f.message_type(), visited, out);
    }
  }
}

}  // namespace

FieldLimits LimitsOf(const FieldDescriptor& field) {
  const auto& o = field.options();
  return FieldLimits{o.GetExtension(v1::max_bytes), o.GetExtension(v1::max_items),
                     o.GetExtension(v1::max_key_bytes), o.GetExtension(v1::max_value_bytes)};
}

absl::Status ScanRequest(google::protobuf::io::ZeroCopyInputStream& stream,
                         const Descriptor& type, const WireLimits& limits,
                         RequestShape* shape) {
  CodedInputStream in(&stream);
  // The scanner enforces its own limits; protobuf's default total-bytes
  // limit must not cut a large, legitimate request short.
  in.SetTotalBytesLimit(std::numeric_limits<int>::max());
  Scanner scanner(in, type, limits, shape);
  absl::Status s = scanner.Message(type, 0);
  shape->bytes = static_cast<size_t>(in.CurrentPosition());
  return s;
}

absl::Status ScanRequest(absl::string_view bytes, const Descriptor& type,
                         const WireLimits& limits, RequestShape* shape) {
  google::protobuf::io::ArrayInputStream stream(bytes.data(), static_cast<int>(bytes.size()));
  absl::Status s = ScanRequest(stream, type, limits, shape);
  shape->bytes = bytes.size();
  return s;
}

std::vector<std::string> FieldsWithoutLimits(const Descriptor& type) {
  std::vector<const Descriptor*> visited;
  std::vector<std::string> out;
  CollectUnlimited(type, visited, out);
  return out;
}

}  // namespace keyward::server

#include "audit/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "audit/record_codec.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace keyward::audit {
namespace {

constexpr char kMagic[8] = {'K', 'W', 'A', 'U', 'D', 'S', 'G', '1'};
constexpr uint64_t kMaxStoredRecord = 1 << 20;

void PutLe64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetLe64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

absl::Status Io(absl::string_view what, const std::string& path, int err) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

// The time of a record (binary expanded, or a JSON line); nullopt when it
// has none readable.
std::optional<absl::Time> RecordTime(absl::string_view r) {
  if (IsJsonRecord(r)) {
    const size_t at = r.find("\"time\":\"");
    if (at == absl::string_view::npos) return std::nullopt;
    absl::Time t;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", std::string(r.substr(at + 8, 27)), &t, &err)) {
      return std::nullopt;
    }
    return t;
  }
  if (r.empty() || static_cast<uint8_t>(r[0]) != codec::kBinaryRecordV1) return std::nullopt;
  r.remove_prefix(1);
  uint64_t v = 0;
  if (!codec::GetVarint(&r, &v) || r.size() < codec::kPrevPrefixBytes) return std::nullopt;
  r.remove_prefix(codec::kPrevPrefixBytes);
  if (!codec::GetVarint(&r, &v)) return std::nullopt;
  return absl::FromUnixMicros(codec::UnZigZag64(v));
}

}  // namespace

std::string SegmentFileName(uint64_t first, bool json) {
  return absl::StrFormat("%020u.%s", first, json ? "jsonl" : "seg");
}

std::optional<std::pair<uint64_t, bool>> ParseSegmentFileName(absl::string_view name) {
  const bool json = absl::EndsWith(name, ".jsonl");
  if (!json && !absl::EndsWith(name, ".seg")) return std::nullopt;
  const absl::string_view digits = name.substr(0, name.rfind('.'));
  uint64_t first = 0;
  if (digits.size() != 20 || !absl::SimpleAtoi(digits, &first)) return std::nullopt;
  return std::make_pair(first, json);
}

std::string SegmentHeader(uint64_t first, absl::Time created) {
  std::string h(kMagic, sizeof(kMagic));
  PutLe64(&h, first);
  PutLe64(&h, static_cast<uint64_t>(absl::ToUnixMicros(created)));
  return h;
}

const std::string* StringTable::At(uint64_t index) const {
  return index < entries_.size() ? &entries_[index] : nullptr;
}

std::optional<uint64_t> StringTable::Find(absl::string_view s) const {
  auto it = index_.find(s);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

void StringTable::Note(absl::string_view s) {
  if (s.size() < 3 || s.size() > 255 || entries_.size() >= kMaxEntries) return;
  if (index_.contains(s)) return;
  index_.emplace(std::string(s), entries_.size());
  entries_.emplace_back(s);
}

void StringTable::Truncate(size_t n) {
  while (entries_.size() > n) {
    index_.erase(entries_.back());
    entries_.pop_back();
  }
}

absl::StatusOr<std::string> CompactRecord(absl::string_view canonical, StringTable* table) {
  std::string out;
  out.reserve(canonical.size());
  KW_RETURN_IF_ERROR(codec::Walk(
      canonical,
      {[&](absl::string_view raw) { out.append(raw.data(), raw.size()); },
       [&](codec::Field f, const codec::StringToken& t) -> absl::Status {
         if (t.kind == codec::kRef) return absl::DataLossError("a reference in a canonical record");
         if (t.kind == codec::kRaw && codec::Internable(f)) {
           if (auto i = table->Find(t.payload)) {
             codec::StringToken ref;
             ref.kind = codec::kRef;
             ref.ref = *i;
             codec::PutToken(&out, ref);
             return absl::OkStatus();
           }
           table->Note(t.payload);
         }
         codec::PutToken(&out, t);
         return absl::OkStatus();
       }}));
  return out;
}

absl::StatusOr<std::string> ExpandRecord(absl::string_view stored, StringTable* table) {
  std::string out;
  out.reserve(stored.size() + 64);
  KW_RETURN_IF_ERROR(codec::Walk(
      stored,
      {[&](absl::string_view raw) { out.append(raw.data(), raw.size()); },
       [&](codec::Field f, const codec::StringToken& t) -> absl::Status {
         if (t.kind == codec::kRef) {
           const std::string* s = table->At(t.ref);
           if (s == nullptr || !codec::Internable(f)) {
             return absl::DataLossError("a record refers to a string the segment never held");
           }
           codec::StringToken raw;
           raw.payload = *s;
           codec::PutToken(&out, raw);
           return absl::OkStatus();
         }
         if (t.kind == codec::kRaw && codec::Internable(f)) table->Note(t.payload);
         codec::PutToken(&out, t);
         return absl::OkStatus();
       }}));
  return out;
}

absl::StatusOr<SegmentScan> ScanSegment(
    const std::string& path,
    const std::function<absl::Status(absl::string_view record)>& record) {
  const size_t slash = path.rfind('/');
  auto named = ParseSegmentFileName(slash == std::string::npos ? path : path.substr(slash + 1));
  if (!named) return absl::InvalidArgumentError(absl::StrCat(path, " is not a segment file"));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no segment ", path));
    return Io("cannot open", path, errno);
  }
  SegmentScan scan;
  scan.first = named->first;
  scan.json = named->second;
  crypto::Sha256Stream hash;
  std::string buf;
  size_t pos = 0;
  uint64_t buf_offset = 0;  // file offset of buf[0]
  bool eof = false;
  int read_error = 0;
  auto fill = [&]() {
    if (eof) return false;
    buf.erase(0, pos);
    buf_offset += pos;
    pos = 0;
    const size_t old = buf.size();
    buf.resize(old + (4 << 20));
    ssize_t n;
    do {
      n = ::read(fd, buf.data() + old, 4 << 20);
    } while (n < 0 && errno == EINTR);
    if (n < 0) read_error = errno;
    buf.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n <= 0) eof = true;
    return n > 0;
  };
  absl::Status status;
  auto take = [&](size_t len) {  // consumes len bytes into the digest
    hash.Update(absl::string_view(buf.data() + pos, len));
    pos += len;
  };
  auto note = [&](absl::string_view canonical) -> absl::Status {
    if (auto t = RecordTime(canonical)) {
      if (scan.count == 0) scan.first_time = *t;
      scan.last_time = *t;
    }
    ++scan.count;
    return record(canonical);
  };
  if (!scan.json) {
    while (buf.size() < kSegmentHeaderBytes && fill()) {
    }
    if (buf.size() < kSegmentHeaderBytes || std::memcmp(buf.data(), kMagic, 8) != 0 ||
        GetLe64(buf.data() + 8) != scan.first) {
      ::close(fd);
      if (buf.size() < kSegmentHeaderBytes && read_error == 0) {
        // Created but its header never completed: an empty segment.
        scan.torn = !buf.empty();
        scan.created = absl::Now();
        scan.sha256 = hash.Digest();
        scan.stream = hash;
        return scan;
      }
      return absl::DataLossError(absl::StrCat(
          path, " does not start as the segment of record ", scan.first,
          " (wrong header): the file was replaced, renamed or damaged"));
    }
    scan.created = absl::FromUnixMicros(static_cast<int64_t>(GetLe64(buf.data() + 16)));
    take(kSegmentHeaderBytes);
  }
  for (;;) {
    const uint64_t record_offset = buf_offset + pos;
    absl::string_view in(buf.data() + pos, buf.size() - pos);
    if (in.empty() && !fill()) break;
    in = absl::string_view(buf.data() + pos, buf.size() - pos);
    std::string expanded;
    absl::string_view canonical;
    size_t consumed = 0;
    if (scan.json) {
      size_t nl = in.find('\n');
      while (nl == absl::string_view::npos && fill()) {
        in = absl::string_view(buf.data() + pos, buf.size() - pos);
        nl = in.find('\n');
      }
      if (nl == absl::string_view::npos) {
        scan.torn = true;
        break;
      }
      canonical = in.substr(0, nl);
      consumed = nl + 1;
    } else {
      uint64_t len = 0;
      size_t header = 0;
      for (;;) {
        absl::string_view v(buf.data() + pos, buf.size() - pos);
        const size_t before = v.size();
        if (codec::GetVarint(&v, &len)) {
          header = before - v.size();
          break;
        }
        if (before >= 10 || !fill()) break;
      }
      if (header == 0) {
        if (buf.size() - pos >= 10) {
          status = absl::DataLossError(absl::StrCat(path, ": record ", scan.first + scan.count,
                                                    " has a malformed length"));
        } else {
          scan.torn = true;
        }
        break;
      }
      if (len > kMaxStoredRecord || len == 0) {
        status = absl::DataLossError(absl::StrCat(path, ": record ", scan.first + scan.count,
                                                  " has an impossible length (", len, ")"));
        break;
      }
      while (buf.size() - pos < header + len && fill()) {
      }
      if (buf.size() - pos < header + len) {
        scan.torn = true;
        break;
      }
      in = absl::string_view(buf.data() + pos, buf.size() - pos);
      auto e = ExpandRecord(in.substr(header, len), &scan.table);
      if (!e.ok()) {
        status = absl::DataLossError(absl::StrCat(path, ": record ", scan.first + scan.count,
                                                  " is not a valid audit record: ",
                                                  e.status().message()));
        break;
      }
      expanded = std::move(*e);
      canonical = expanded;
      consumed = header + len;
    }
    if (scan.count % kOffsetStride == 0) scan.offsets.push_back(record_offset);
    status = note(canonical);
    if (!status.ok()) break;
    take(consumed);
  }
  ::close(fd);
  if (read_error != 0) return Io("cannot read", path, read_error);
  if (!status.ok()) return status;
  scan.valid_bytes = buf_offset + pos;
  scan.sha256 = hash.Digest();
  scan.stream = hash;
  return scan;
}

std::string PrunedMessage(const PrunedHistory& p) {
  return absl::StrCat("keyward audit pruned v1\n", p.environment, "\n", p.size, "\n",
                      ToHex(RootOfCompactRange(p.nodes)), "\n", absl::ToUnixMicros(p.time),
                      "\n");
}

std::string SerializePruned(const PrunedHistory& p) {
  nlohmann::ordered_json j;
  j["format"] = "keyward pruned audit history v1";
  j["size"] = p.size;
  std::vector<std::string> nodes;
  for (const Hash& h : p.nodes) nodes.push_back(ToHex(h));
  j["compact_range"] = nodes;
  j["last_leaf"] = ToHex(p.last_leaf);
  nlohmann::ordered_json hops = nlohmann::ordered_json::array();
  for (const auto& hop : p.hops) {
    std::vector<std::string> proof;
    for (const Hash& h : hop.proof) proof.push_back(ToHex(h));
    hops.push_back({{"from", hop.from}, {"to", hop.to}, {"from_root", ToHex(hop.from_root)},
                    {"proof", proof}});
  }
  j["hops"] = hops;
  j["segments_removed"] = p.segments;
  if (!p.signature.empty()) {
    j["environment"] = p.environment;
    j["time_unix_micros"] = absl::ToUnixMicros(p.time);
    j["key_fingerprint"] = p.key_fingerprint;
    j["signature"] = absl::Base64Escape(p.signature);
  }
  return j.dump(1) + "\n";
}

absl::StatusOr<PrunedHistory> ParsePruned(absl::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto bad = [] { return absl::DataLossError("pruned.json is malformed"); };
  if (!j.is_object()) return bad();
  PrunedHistory p;
  try {
    p.size = j.at("size").get<uint64_t>();
    for (const auto& h : j.at("compact_range")) {
      Hash x;
      if (!FromHex(h.get<std::string>(), &x)) return bad();
      p.nodes.push_back(x);
    }
    if (!FromHex(j.at("last_leaf").get<std::string>(), &p.last_leaf)) return bad();
    for (const auto& hj : j.at("hops")) {
      PrunedHistory::Hop hop;
      hop.from = hj.at("from").get<uint64_t>();
      hop.to = hj.at("to").get<uint64_t>();
      if (!FromHex(hj.at("from_root").get<std::string>(), &hop.from_root)) return bad();
      for (const auto& h : hj.at("proof")) {
        Hash x;
        if (!FromHex(h.get<std::string>(), &x)) return bad();
        hop.proof.push_back(x);
      }
      p.hops.push_back(std::move(hop));
    }
    p.segments = j.value("segments_removed", uint64_t{0});
    if (j.contains("signature")) {
      p.environment = j.at("environment").get<std::string>();
      p.time = absl::FromUnixMicros(j.at("time_unix_micros").get<int64_t>());
      p.key_fingerprint = j.at("key_fingerprint").get<std::string>();
      if (!absl::Base64Unescape(j.at("signature").get<std::string>(), &p.signature)) return bad();
    }
  } catch (const nlohmann::json::exception&) {
    return bad();
  }
  if (CompactRangeSizes(p.size).size() != p.nodes.size()) return bad();
  return p;
}

std::string SerializeArchiveMark(const ArchiveMark& m) {
  nlohmann::ordered_json j = {{"first", m.first},
                              {"records", m.count},
                              {"sha256", ToHex(m.sha256)},
                              {"destination", m.destination},
                              {"by", m.by},
                              {"time_unix_micros", absl::ToUnixMicros(m.time)}};
  return j.dump();
}

absl::StatusOr<ArchiveMark> ParseArchiveMark(absl::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  ArchiveMark m;
  try {
    m.first = j.at("first").get<uint64_t>();
    m.count = j.at("records").get<uint64_t>();
    if (!FromHex(j.at("sha256").get<std::string>(), &m.sha256)) {
      return absl::DataLossError("archived.log: a malformed digest");
    }
    m.destination = j.at("destination").get<std::string>();
    m.by = j.at("by").get<std::string>();
    m.time = absl::FromUnixMicros(j.at("time_unix_micros").get<int64_t>());
  } catch (const nlohmann::json::exception&) {
    return absl::DataLossError("archived.log: a malformed line");
  }
  return m;
}

void CrashPoint(const char* step) {
  const char* at = std::getenv("KEYWARD_TEST_CRASH_AT");
  if (at != nullptr && std::strcmp(at, step) == 0) ::kill(::getpid(), SIGKILL);
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Io("cannot open", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Io("cannot sync", dir, err);
  return absl::OkStatus();
}

absl::Status WriteFileDurably(const std::string& path, absl::string_view content, int mode) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Io("cannot create", tmp, errno);
  size_t done = 0;
  int err = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  ::close(fd);
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    return Io("cannot write", path, err);
  }
  const size_t slash = path.rfind('/');
  return SyncDirectory(slash == std::string::npos ? "." : path.substr(0, slash));
}

absl::Status AppendLineDurably(const std::string& path, absl::string_view line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Io("cannot open", path, errno);
  const std::string bytes = absl::StrCat(line, "\n");
  const ssize_t n = ::write(fd, bytes.data(), bytes.size());
  int err = n == static_cast<ssize_t>(bytes.size()) ? 0 : (n < 0 ? errno : EIO);
  if (err == 0 && ::fdatasync(fd) != 0) err = errno;
  ::close(fd);
  if (err != 0) return Io("cannot append to", path, err);
  return absl::OkStatus();
}

}  // namespace keyward::audit

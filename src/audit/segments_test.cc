// Compact records, segments, archival, pruning and verification across
// archives (docs/audit.md "Segments, archival and retention").
// Long on purpose: the encoding vectors, rollover, archive/prune/verify,
// tampering and crash tests share one fixture.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "audit/record_codec.h"
#include "audit/segment.h"
#include "audit/testing/log_files.h"
#include "audit/verifier.h"
#include "base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/software_root_of_trust.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::audit {
namespace {

using ::keyward::testing::ListDir;
using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::StatusIs;
using ::keyward::testing::TempDir;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;

// A data-key call as keywardd records it.
AuditRecord DataKeyCall(int i) {
  AuditRecord r;
  r.time = absl::FromUnixMicros(1'800'000'000'000'000 + int64_t{i} * 1000);
  r.request_id = absl::StrCat("9f3c1e2d", absl::Hex(i, absl::kZeroPad16));
  r.principal = "spiffe://example.org/tenant/acme/payments-api";
  r.peer = absl::StrCat("ipv4:10.1.", (i / 250) % 250, ".", i % 250, ":", 40000 + i % 20000);
  r.operation = i % 10 == 0 ? "generate-data-key" : "decrypt";
  r.key = "payments/card-numbers";
  r.version = 3;
  r.context = {{"tenant", "hmac:5b0e8a1f3c2d4e6f7a8b9c0d1e2f3a4b"},
               {"table", "hmac:0a1b2c3d4e5f60718293a4b5c6d7e8f9"}};
  r.decision = "allow";
  r.rule = "tenant-data";
  r.result = "OK";
  r.latency_us = 180 + i % 97;
  return r;
}

Hash Counting() {
  Hash h{};
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint8_t>(i);
  return h;
}

// The encoding is each record's Merkle leaf: frozen, byte for byte.
TEST(RecordEncodingTest, BinaryEncodingIsFrozen) {
  AuditRecord r = DataKeyCall(7);
  r.detail = "note \xff";
  r.error_code = "";
  const std::string canonical = ChainBinaryRecord(EncodeRecordBody(r), 7, Counting());
  EXPECT_EQ(absl::BytesToHexString(canonical), 
            "01070001020304050607b0edc489e5c5b206619f3c1e2d0000000000000007e802"
            "7370696666653a2f2f6578616d706c652e6f72672f74656e616e742f61636d652f"
            "7061796d656e74732d617069340a0100079c473864656372797074a8017061796d"
            "656e74732f636172642d6e756d626572730302287461626c6582010a1b2c3d4e5f"
            "60718293a4b5c6d7e8f93074656e616e7482015b0e8a1f3c2d4e6f7a8b9c0d1e2f"
            "3a4b28616c6c6f775874656e616e742d64617461104f4b00f602406e6f746520"
            "efbfbd");
  // Stored in a segment after a first record, repeated strings become
  // references to it.
  StringTable table;
  KW_ASSERT_OK(CompactRecord(ChainBinaryRecord(EncodeRecordBody(DataKeyCall(6)), 6, Hash{}),
                             &table)
                   .status());
  KW_ASSERT_OK_AND_ASSIGN(std::string stored, CompactRecord(canonical, &table));
  EXPECT_EQ(absl::BytesToHexString(stored), 
            "01070001020304050607b0edc489e5c5b206619f3c1e2d000000000000000703340a"
            "0100079c470b1303021b82010a1b2c3d4e5f60718293a4b5c6d7e8f92382015b0e"
            "8a1f3c2d4e6f7a8b9c0d1e2f3a4b2b33104f4b00f602406e6f746520efbfbd");
  // Both decode to the record, and render as the JSON line readers get.
  StringTable reader;
  StringTable first_writer;
  KW_ASSERT_OK(ExpandRecord(*CompactRecord(
                                ChainBinaryRecord(EncodeRecordBody(DataKeyCall(6)), 6, Hash{}),
                                &first_writer),
                            &reader)
                   .status());
  KW_ASSERT_OK_AND_ASSIGN(std::string expanded, ExpandRecord(stored, &reader));
  EXPECT_EQ(expanded, canonical);
  KW_ASSERT_OK_AND_ASSIGN(DecodedRecord d, DecodeBinaryRecord(canonical));
  EXPECT_EQ(d.seq, 7u);
  EXPECT_EQ(d.record.principal, r.principal);
  EXPECT_EQ(d.record.peer, r.peer);
  EXPECT_EQ(d.record.request_id, r.request_id);
  EXPECT_EQ(d.record.context, r.context);
  EXPECT_EQ(d.record.time, r.time);
  EXPECT_EQ(d.record.detail, "note \xef\xbf\xbd") << "invalid UTF-8 is replaced, as in JSON";
  KW_ASSERT_OK_AND_ASSIGN(std::string json, RecordAsJson(canonical, Counting()));
  EXPECT_EQ(json, SerializeRecord(r, 7, Counting()));
  // And an exported line re-encodes to the same leaf.
  KW_ASSERT_OK_AND_ASSIGN(ParsedJsonRecord back, ParseJsonRecord(json));
  EXPECT_EQ(ChainBinaryRecord(EncodeRecordBody(back.record), back.seq, back.prev), canonical);
}

TEST(RecordEncodingTest, StringsThatLookCompactButAreNotRoundTripExactly) {
  for (const std::string& s :
       {std::string(""), std::string("ab"), std::string("ABCD"), std::string("abc"),
        std::string("hmac:"), std::string("hmac:0"), std::string("hmac:AB"),
        std::string("ipv4:1.2.3.4:5"), std::string("ipv4:01.2.3.4:5"),
        std::string("ipv4:1.2.3.4:65536"), std::string("ipv4:256.2.3.4:5"),
        std::string("ipv4:1.2.3:4"), std::string("ipv6:[::1]:80"), std::string("\x01\x02")}) {
    AuditRecord r;
    r.peer = s;
    r.request_id = s;
    r.context[s] = s;
    KW_ASSERT_OK_AND_ASSIGN(DecodedRecord d,
                            DecodeBinaryRecord(ChainBinaryRecord(EncodeRecordBody(r), 0, {})));
    EXPECT_EQ(d.record.peer, s);
    EXPECT_EQ(d.record.request_id, s);
    EXPECT_EQ(d.record.context.at(s), s);
  }
}

TEST(RecordEncodingTest, MalformedRecordsAreRejectedNotMisread) {
  const std::string good = ChainBinaryRecord(EncodeRecordBody(DataKeyCall(1)), 1, {});
  for (size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(DecodeBinaryRecord(good.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(DecodeBinaryRecord(good + "x").ok());
  StringTable empty;
  // A reference to a string the segment never held.
  std::string dangling = good.substr(0, 1 + 1 + 8 + 8 + 13);
  codec::PutVarint(&dangling, uint64_t{9} << 3 | codec::kRef);
  EXPECT_FALSE(ExpandRecord(dangling, &empty).ok());
}

TEST(RecordEncodingTest, ADataKeyCallTakesUnder150BytesInASegment) {
  TempDir dir;
  hsm::testing::SoftwareRootOfTrust signer;
  AuditLogOptions o;
  o.dir = dir.File("audit");
  o.environment = "dev";
  o.signer = &signer;
  o.signing_key_label = "k";
  o.checkpoint_interval = absl::ZeroDuration();
  {
    auto log = AuditLog::Open(o);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 1000; ++i) (*log)->AppendAsync(DataKeyCall(i));
    KW_ASSERT_OK((*log)->Append(DataKeyCall(1000)));
  }
  const std::string seg = testing::OpenSegmentPath(dir.File("audit"));
  struct stat st;
  ASSERT_EQ(::stat(seg.c_str(), &st), 0);
  const double per_record = static_cast<double>(st.st_size - kSegmentHeaderBytes) / 1001;
  std::printf("a data-key call: %.1f bytes in a segment (canonical encoding %zu bytes)\n",
              per_record, ChainBinaryRecord(EncodeRecordBody(DataKeyCall(5)), 5, {}).size());
  EXPECT_LE(per_record, 150);
}

class SegmentsTest : public ::testing::Test {
 protected:
  SegmentsTest() {
    // Created before any fork, so that child processes sign with it too.
    pem_ = *signer_.GetOrCreateSigningKey("keyward-audit/dev");
  }
  AuditLogOptions Options() {
    AuditLogOptions o;
    o.dir = dir_.File("audit");
    o.environment = "dev";
    o.signer = &signer_;
    o.signing_key_label = "keyward-audit/dev";
    o.checkpoint_interval = absl::ZeroDuration();
    o.segments.max_bytes = 2048;  // about 20 records
    return o;
  }
  CheckpointTrust Pinned() {
    CheckpointTrust t;
    t.public_keys_pem.push_back(pem_);
    return t;
  }
  VerifyReport Verify(std::vector<std::string> archives = {}, bool live = true,
                      const std::optional<SavedCheckpoint>& saved = std::nullopt) {
    auto r = VerifyAuditLogDirs({live ? dir_.File("audit") : "", std::move(archives)}, Pinned(),
                                saved);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(VerifyReport{});
  }
  void Fill(AuditLog& log, int from, int n) {
    for (int i = from; i < from + n; ++i) KW_ASSERT_OK(log.Append(DataKeyCall(i)));
  }
  std::vector<SegmentStatus> Closed(AuditLog& log) {
    std::vector<SegmentStatus> out;
    for (const SegmentStatus& s : log.Segments()) {
      if (s.closed) out.push_back(s);
    }
    return out;
  }
  absl::StatusOr<ArchiveReport> Archive(AuditLog& log, const std::string& to,
                                        absl::Time before = absl::InfiniteFuture()) {
    ArchiveOptions a;
    a.log_dir = dir_.File("audit");
    a.archive_dir = to;
    a.before = before;
    a.by = "test";
    KW_RETURN_IF_ERROR(log.SignClosedSegments());
    return ArchiveSegments(a, [&](const ArchiveMark& m) { return log.MarkArchived(m); });
  }
  std::string SegmentFile(const std::string& dir, uint64_t first) {
    return absl::StrCat(dir, "/segments/", SegmentFileName(first, false));
  }

  TempDir dir_;
  hsm::testing::SoftwareRootOfTrust signer_;
  std::string pem_;
};

TEST_F(SegmentsTest, SegmentsRollOverUnderLoadEachClosedBySignedCheckpoint) {
  {
    auto log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok()) << log.status();
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 150; ++i) EXPECT_TRUE((*log)->Append(DataKeyCall(t * 1000 + i)).ok());
      });
    }
    for (auto& th : threads) th.join();
    const std::vector<SegmentStatus> segs = (*log)->Segments();
    ASSERT_GT(segs.size(), 20u);
    uint64_t expect = 0;
    for (const SegmentStatus& s : segs) {
      EXPECT_EQ(s.first, expect);
      expect += s.count;
      if (!s.closed) continue;
      struct stat st;
      ASSERT_EQ(::stat(s.path.c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0222, 0u) << s.path << " is closed but writable";
    }
    EXPECT_EQ(expect, 1200u);
  }
  // Every closed segment is named, with its digest, by a signed checkpoint.
  int closing = 0;
  for (absl::string_view line :
       absl::StrSplit(ReadFileOrDie(dir_.File("audit/checkpoints.log")), '\n', absl::SkipEmpty())) {
    KW_ASSERT_OK_AND_ASSIGN(Checkpoint c, ParseCheckpoint(line));
    if (c.segment) ++closing;
  }
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 1200u);
  EXPECT_EQ(static_cast<uint64_t>(closing) + 1, r.segments);
  // Reopened, it goes on where it stopped.
  auto log = AuditLog::Open(Options());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->size(), 1200u);
  Fill(**log, 5000, 5);
  uint64_t next = 0;
  KW_ASSERT_OK_AND_ASSIGN(auto lines, (*log)->Read(1199, 10, RecordFilter{}, &next));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_THAT(lines[5], HasSubstr("\"seq\":1204"));
}

TEST_F(SegmentsTest, ARecordsLogFromBeforeSegmentsBecomesTheFirstSegment) {
  // A log written as JSON lines by an earlier keywardd.
  {
    AuditLogOptions o = Options();
    o.dir.clear();
    o.storage = nullptr;
  }
  ::mkdir(dir_.File("audit").c_str(), 0700);
  std::string records;
  Hash prev{};
  MerkleTree tree;
  for (int i = 0; i < 5; ++i) {
    const std::string line = SerializeRecord(DataKeyCall(i), i, prev);
    prev = LeafHash(line);
    tree.Append(prev);
    records += line + "\n";
  }
  WriteFileOrDie(dir_.File("audit/records.log"), records);
  {
    auto log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->size(), 5u);
    EXPECT_EQ(*(*log)->Root(5), *tree.Root(5)) << "old leaves are kept as they were";
    Fill(**log, 5, 30);
    uint64_t next = 0;
    KW_ASSERT_OK_AND_ASSIGN(auto lines, (*log)->Read(3, 4, RecordFilter{}, &next));
    EXPECT_EQ(lines[0], SerializeRecord(DataKeyCall(3), 3, *(*log)->LeafAt(2)));
    EXPECT_THAT(lines[3], HasSubstr("\"seq\":6"));
  }
  EXPECT_NE(::access(dir_.File("audit/records.log").c_str(), F_OK), 0);
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 35u);
}

TEST_F(SegmentsTest, ArchivePruneAndVerifyWithAndWithoutTheArchive) {
  auto log = AuditLog::Open(Options());
  ASSERT_TRUE(log.ok()) << log.status();
  Fill(**log, 0, 50);
  // An auditor saved a checkpoint early on.
  KW_ASSERT_OK_AND_ASSIGN(Checkpoint early, (*log)->MakeCheckpoint());
  SavedCheckpoint saved{early, pem_};
  Fill(**log, 50, 150);
  // Pruning what was never archived is refused, and removes nothing.
  const size_t segments = (*log)->Segments().size();
  EXPECT_THAT((*log)->Prune({absl::InfiniteFuture(), false, false, "admin", "r1", "", ""}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("never archived")));
  EXPECT_EQ((*log)->Segments().size(), segments);
  EXPECT_EQ((*log)->pruned(), 0u);
  // Archived first (the segments whose last record is before the cut).
  const std::vector<SegmentStatus> closed = Closed(**log);
  ASSERT_GE(closed.size(), 6u);
  const absl::Time cut = closed[4].last_time + absl::Microseconds(1);
  ASSERT_GT(closed[4].first + closed[4].count, 50u) << "the saved checkpoint is before the cut";
  KW_ASSERT_OK_AND_ASSIGN(ArchiveReport archived, Archive(**log, dir_.File("archive1"), cut));
  EXPECT_EQ(archived.segments.size(), 5u);
  KW_ASSERT_OK_AND_ASSIGN(AuditLog::PruneResult pruned,
                          (*log)->Prune({cut, false, false, "admin", "r2", "", "quarterly"}));
  EXPECT_EQ(pruned.segments.size(), 5u);
  const uint64_t p = closed[4].first + closed[4].count;
  EXPECT_EQ((*log)->pruned(), p);
  EXPECT_NE(::access(closed[0].path.c_str(), F_OK), 0) << "pruned segments are removed";
  // The prune is recorded, naming who pruned what.
  uint64_t next = 0;
  RecordFilter prunes;
  prunes.operation = "prune-audit-log";
  KW_ASSERT_OK_AND_ASSIGN(auto recs, (*log)->Read(0, 10, prunes, &next));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_THAT(recs[0], HasSubstr("\"principal\":\"admin\""));
  EXPECT_THAT(recs[0], HasSubstr("PENDING"));
  EXPECT_THAT(recs[0], HasSubstr("5 segment(s), records 0.."));
  EXPECT_THAT(recs[1], HasSubstr("the live log now starts at record"));
  // Proofs for retained records still verify against later checkpoints,
  // and a later tree is consistent with the pruned point.
  Fill(**log, 200, 30);
  KW_ASSERT_OK_AND_ASSIGN(Checkpoint later, (*log)->MakeCheckpoint());
  KW_ASSERT_OK_AND_ASSIGN(auto incl, (*log)->InclusionProof(p + 3, later.tree_size));
  EXPECT_TRUE(VerifyInclusion(*(*log)->LeafAt(p + 3), p + 3, later.tree_size, incl, later.root));
  KW_ASSERT_OK_AND_ASSIGN(auto cons, (*log)->ConsistencyProof(p, later.tree_size));
  EXPECT_TRUE(VerifyConsistency(p, later.tree_size, *(*log)->Root(p), later.root, cons));
  EXPECT_THAT((*log)->InclusionProof(2, later.tree_size),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("archive")));
  log->reset();

  // The live log alone: the retained records, extending the signed root of
  // the pruned history.
  VerifyReport live = Verify();
  EXPECT_TRUE(live.ok) << live.problem;
  EXPECT_EQ(live.first_record, p);
  EXPECT_EQ(live.records, 232 - p);  // + the two prune records
  EXPECT_GT(live.pruned_checkpoints, 0u);
  // A checkpoint saved before the prune needs the archive...
  VerifyReport no_archive = Verify({}, true, saved);
  EXPECT_FALSE(no_archive.ok);
  EXPECT_THAT(no_archive.problem, HasSubstr("pass the archive"));
  // ...with which the whole history verifies, and the saved checkpoint too.
  VerifyReport whole = Verify({dir_.File("archive1")}, true, saved);
  EXPECT_TRUE(whole.ok) << whole.problem;
  EXPECT_EQ(whole.first_record, 0u);
  EXPECT_EQ(whole.records, 232u);
  // The archive verifies on its own.
  VerifyReport alone = Verify({dir_.File("archive1")}, false);
  EXPECT_TRUE(alone.ok) << alone.problem;
  EXPECT_EQ(alone.records, p);

  // A second round: archive the rest elsewhere, prune again; both archives
  // and the live log make one history.
  log = AuditLog::Open(Options());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->pruned(), p);
  KW_ASSERT_OK_AND_ASSIGN(ArchiveReport second, Archive(**log, dir_.File("archive2")));
  ASSERT_FALSE(second.segments.empty());
  KW_ASSERT_OK((*log)->Prune({second.segments.back().last_time + absl::Microseconds(1), false,
                              false, "admin", "r3", "", ""})
                   .status());
  const uint64_t p2 = (*log)->pruned();
  EXPECT_GT(p2, p);
  log->reset();
  EXPECT_TRUE(Verify().ok);
  VerifyReport both = Verify({dir_.File("archive1"), dir_.File("archive2")}, true, saved);
  EXPECT_TRUE(both.ok) << both.problem;
  EXPECT_EQ(both.first_record, 0u);
  // archive2 starts after record 0: it carries the compact range before it.
  EXPECT_TRUE(::access(absl::StrCat(dir_.File("archive2"), "/", PrefixFileName(p)).c_str(),
                       F_OK) == 0);
  VerifyReport second_alone = Verify({dir_.File("archive2")}, false);
  EXPECT_TRUE(second_alone.ok) << second_alone.problem;
  // Without archive1, records 0..p-1 are missing from the set given.
  VerifyReport gap = Verify({dir_.File("archive2")}, true, saved);
  EXPECT_FALSE(gap.ok);
}

TEST_F(SegmentsTest, AForcedPruneOfUnarchivedSegmentsIsRecordedAsSuch) {
  auto log = AuditLog::Open(Options());
  ASSERT_TRUE(log.ok()) << log.status();
  Fill(**log, 0, 100);
  KW_ASSERT_OK_AND_ASSIGN(auto dry, (*log)->Prune({absl::InfiniteFuture(), false, true,
                                                   "admin", "r", "", ""}));
  EXPECT_FALSE(dry.segments.empty());
  EXPECT_EQ((*log)->pruned(), 0u) << "a dry run removes nothing";
  KW_ASSERT_OK_AND_ASSIGN(auto forced, (*log)->Prune({absl::InfiniteFuture(), true, false,
                                                      "admin", "r", "", "disk full"}));
  EXPECT_EQ(forced.unarchived.size(), forced.segments.size());
  uint64_t next = 0;
  RecordFilter prunes;
  prunes.operation = "prune-audit-log";
  KW_ASSERT_OK_AND_ASSIGN(auto recs, (*log)->Read(0, 10, prunes, &next));
  ASSERT_FALSE(recs.empty());
  EXPECT_THAT(recs[0], HasSubstr("FORCED"));
  EXPECT_THAT(recs[0], HasSubstr("disk full"));
}

// Each way of tampering with the segments an auditor is handed.
TEST_F(SegmentsTest, MissingAlteredReorderedOrSubstitutedSegmentsAreDetected) {
  {
    auto log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok()) << log.status();
    Fill(**log, 0, 150);
    KW_ASSERT_OK_AND_ASSIGN(ArchiveReport archived, Archive(**log, dir_.File("arch")));
    ASSERT_FALSE(archived.segments.empty());
    KW_ASSERT_OK((*log)->Prune({archived.segments.back().last_time + absl::Microseconds(1),
                                false, false, "admin", "r", "", ""})
                     .status());
  }
  const std::string arch = dir_.File("arch");
  std::vector<std::string> files = ListDir(arch + "/segments");
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 4u);
  ASSERT_TRUE(Verify({arch}).ok);
  auto path = [&](size_t i) { return absl::StrCat(arch, "/segments/", files[i]); };
  auto keep = [&](size_t i) {
    const std::string p = path(i);
    const std::string c = ReadFileOrDie(p);
    return [p, c] {
      ::chmod(p.c_str(), 0600);
      WriteFileOrDie(p, c);
    };
  };
  // Missing.
  {
    auto restore = keep(2);
    ASSERT_EQ(::unlink(path(2).c_str()), 0);
    VerifyReport r = Verify({arch});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.problem, HasSubstr("are missing"));
    restore();
    EXPECT_TRUE(Verify({arch}).ok);
  }
  // Altered: one byte of one record.
  {
    auto restore = keep(1);
    std::string c = ReadFileOrDie(path(1));
    c[c.size() - 3] ^= 0x01;
    ::chmod(path(1).c_str(), 0600);
    WriteFileOrDie(path(1), c);
    VerifyReport r = Verify({arch});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.problem, HasSubstr("record"));
    restore();
  }
  // Reordered: two segments' files swapped.
  {
    auto r1 = keep(1);
    auto r2 = keep(2);
    const std::string a = ReadFileOrDie(path(1)), b = ReadFileOrDie(path(2));
    ::chmod(path(1).c_str(), 0600);
    ::chmod(path(2).c_str(), 0600);
    WriteFileOrDie(path(1), b);
    WriteFileOrDie(path(2), a);
    VerifyReport r = Verify({arch});
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.problem, HasSubstr("wrong header"));
    r1();
    r2();
  }
  // Substituted: a segment rebuilt with a valid chain and other content.
  {
    auto restore = keep(1);
    auto lines = [&] {
      TempDir scratch;
      ::mkdir(scratch.File("l").c_str(), 0700);
      ::mkdir(scratch.File("l/segments").c_str(), 0700);
      ::link(path(1).c_str(), scratch.File("l/segments/" + files[1]).c_str());
      return *testing::ReadLogLines(scratch.File("l"));
    }();
    ASSERT_FALSE(lines.empty());
    for (std::string& l : lines) {
      const size_t at = l.find("\"decrypt\"");
      if (at != std::string::npos) l.replace(at, 9, "\"encrypt\"");
    }
    // Written with the stored seq and prev of each record, as a forger would.
    TempDir scratch;
    ::mkdir(scratch.File("l").c_str(), 0700);
    ::mkdir(scratch.File("l/segments").c_str(), 0700);
    WriteFileOrDie(scratch.File("l/segments/" + files[1]), ReadFileOrDie(path(1)));
    KW_ASSERT_OK(testing::WriteLogLines(scratch.File("l"), lines).status());
    ::chmod(path(1).c_str(), 0600);
    WriteFileOrDie(path(1), ReadFileOrDie(scratch.File("l/segments/" + files[1])));
    VerifyReport r = Verify({arch});
    EXPECT_FALSE(r.ok);
    restore();
  }
  // A copy in the live log that differs from the archive's.
  EXPECT_TRUE(Verify({arch}).ok);
  // pruned.json altered: its compact range no longer folds to the signed root.
  {
    const std::string pj = dir_.File("audit/pruned.json");
    const std::string good = ReadFileOrDie(pj);
    KW_ASSERT_OK_AND_ASSIGN(PrunedHistory h, ParsePruned(good));
    h.nodes.back()[0] ^= 1;
    WriteFileOrDie(pj, SerializePruned(h));
    VerifyReport r = Verify();
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(AuditLog::Open(Options()).ok()) << "keywardd refuses it too";
    WriteFileOrDie(pj, good);
  }
  EXPECT_TRUE(Verify().ok);
  EXPECT_TRUE(Verify({arch}).ok);
}

// kill -9 at each step of closing a segment and of pruning: the log opens,
// holds every acknowledged record, and verifies.
class CrashTest : public SegmentsTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CrashTest, NothingAcknowledgedIsLostAndTheLogVerifies) {
  const std::string step = GetParam();
  const std::string acked = dir_.File("acked");
  // The log starts with records, an archive and one prune behind it.
  {
    auto log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok()) << log.status();
    Fill(**log, 0, 60);
  }
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("KEYWARD_TEST_CRASH_AT", step.c_str(), 1);
    auto log = AuditLog::Open(Options());
    if (!log.ok()) ::_exit(3);
    std::ofstream out(acked, std::ios::app);
    for (int i = 60; i < 10000; ++i) {
      if (!(*log)->Append(DataKeyCall(i)).ok()) ::_exit(4);
      out << i << "\n" << std::flush;  // acknowledged
      if (i % 25 == 0 && step.rfind("prune", 0) == 0) {
        ArchiveOptions a;
        a.log_dir = dir_.File("audit");
        a.archive_dir = dir_.File("arch");
        a.by = "test";
        if (!(*log)->SignClosedSegments().ok()) ::_exit(5);
        auto report =
            ArchiveSegments(a, [&](const ArchiveMark& m) { return (*log)->MarkArchived(m); });
        if (!report.ok()) ::_exit(5);
        // Up to what was archived (the writer may close another segment
        // meanwhile).
        if (!report->segments.empty() &&
            !(*log)->Prune({report->segments.back().last_time + absl::Microseconds(1), false,
                            false, "t", "r", "", ""})
                 .ok()) {
          ::_exit(6);
        }
      }
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << step << ": the child did not reach the crash point (status " << status << ")";
  // Reopened: the interrupted step is finished or undone, nothing lost.
  auto log = AuditLog::Open(Options());
  ASSERT_TRUE(log.ok()) << step << ": " << log.status();
  uint64_t last = 0;
  for (absl::string_view l : absl::StrSplit(ReadFileOrDie(acked), '\n', absl::SkipEmpty())) {
    ASSERT_TRUE(absl::SimpleAtoi(l, &last));
  }
  EXPECT_GT((*log)->size(), last) << step << ": acknowledged records were lost";
  Fill(**log, 20000, 3);
  log->reset();
  VerifyReport r = Verify({dir_.File("arch")});
  EXPECT_TRUE(r.ok) << step << ": " << r.problem;
  EXPECT_EQ(r.first_record, 0u);
  VerifyReport live = Verify();
  EXPECT_TRUE(live.ok) << step << ": " << live.problem;
}

INSTANTIATE_TEST_SUITE_P(Steps, CrashTest,
                         ::testing::Values("segment-created", "segment-closed", "prune-recorded",
                                           "pruned-json-written", "prune-half-removed"));

bool HasAck(const std::string& path) {
  std::error_code ec;
  return std::filesystem::file_size(path, ec) > 0 && !ec;
}

// kill -9 at random moments of a busy log that rolls over and prunes.
TEST_F(SegmentsTest, KillNineAtRandomMomentsLosesNothing) {
  std::mt19937 rng(42);
  uint64_t total_acked = 0;
  for (int round = 0; round < 6; ++round) {
    const std::string acked = dir_.File(absl::StrCat("acked", round));
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::Open(Options());
      if (!log.ok()) ::_exit(3);
      std::ofstream out(acked);
      for (int i = 0;; ++i) {
        if (!(*log)->Append(DataKeyCall(round * 100000 + i)).ok()) ::_exit(4);
        out << (*log)->size() << "\n" << std::flush;
        if (i % 40 == 39) {
          ArchiveOptions a;
          a.log_dir = dir_.File("audit");
          a.archive_dir = dir_.File("arch");
          a.by = "test";
          absl::Status s = (*log)->SignClosedSegments();
          absl::StatusOr<ArchiveReport> report;
          if (s.ok()) {
            report = ArchiveSegments(
                a, [&](const ArchiveMark& m) { return (*log)->MarkArchived(m); });
            s = report.status();
          }
          // Only what was archived: the writer may close another segment
          // meanwhile, which a prune up to now would rightly refuse.
          if (s.ok() && !report->segments.empty()) {
            const absl::Time cut = report->segments.back().last_time + absl::Microseconds(1);
            s = (*log)->Prune({cut, false, false, "t", "r", "", ""}).status();
          }
          if (!s.ok()) {
            std::fprintf(stderr, "child: %s\n", s.ToString().c_str());
            ::_exit(5);
          }
        }
      }
    }
    // Wait for the child's first acknowledged record (opening the log is
    // slow under a sanitizer), then kill it at a random moment after.
    for (int waited = 0; waited < 600 && !HasAck(acked); ++waited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(HasAck(acked)) << "round " << round << ": the child acknowledged nothing in 60 s";
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round << ": the child failed: " << status;
    auto log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok()) << "round " << round << ": " << log.status();
    uint64_t size_acked = 0;
    for (absl::string_view l : absl::StrSplit(ReadFileOrDie(acked), '\n', absl::SkipEmpty())) {
      if (!absl::SimpleAtoi(l, &size_acked)) break;  // a line cut by the kill
    }
    EXPECT_GE((*log)->size(), size_acked) << "round " << round;
    total_acked += size_acked;
  }
  VerifyReport r = Verify({dir_.File("arch")});
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.first_record, 0u);
  std::printf("6 kills at random moments; the log verifies with %llu records\n",
              static_cast<unsigned long long>(r.records));
}

}  // namespace
}  // namespace keyward::audit

// `keyward breakglass request|approve|list|show|revoke|report`: emergency
// decrypt access with quorum approval (docs/incident-response.md).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit/audit_log.h"
#include "audit/merkle.h"
#include "base/duration.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "crypto/signature.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string Time(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

Json ToJson(const BreakGlassInfo& g) {
  Json context = Json::object();
  for (const auto& [k, v] : g.context) context[k] = v;
  Json approvals = Json::array();
  for (const auto& a : g.approvals) {
    approvals.push_back(Json{{"principal", a.principal}, {"time", Time(a.time)}});
  }
  return Json{{"id", g.id},
              {"state", g.state},
              {"requester", g.requester},
              {"key", g.key},
              {"context", context},
              {"reason", g.reason},
              {"policy_entry", g.policy_entry},
              {"quorum", g.quorum},
              {"approvals", approvals},
              {"duration", FormatHumanDuration(g.duration)},
              {"max_decrypts", g.max_decrypts},
              {"decrypts", g.decrypts},
              {"requested", Time(g.requested)},
              {"activated", g.activated ? Json(Time(*g.activated)) : Json(nullptr)},
              {"expires", Time(g.expires)},
              {"revoked", g.revoked ? Json(Time(*g.revoked)) : Json(nullptr)},
              {"revoked_by", g.revoked_by}};
}

std::string Decrypts(const BreakGlassInfo& g) {
  return g.max_decrypts == 0 ? absl::StrCat(g.decrypts, " (no count limit)")
                             : absl::StrCat(g.decrypts, " of ", g.max_decrypts);
}

void PrintGrant(const BreakGlassInfo& g) {
  std::vector<std::string> ctx;
  for (const auto& [k, v] : g.context) ctx.push_back(k + "=" + v);
  std::printf("break-glass  %s (%s)\n", g.id.c_str(), g.state.c_str());
  std::printf("requester    %s\n", g.requester.c_str());
  std::printf("key          %s\n", g.key.c_str());
  std::printf("context      %s\n", ctx.empty() ? "-" : absl::StrJoin(ctx, ", ").c_str());
  std::printf("reason       %s\n", g.reason.c_str());
  std::printf("approvals    %zu of %d (policy entry %s)\n", g.approvals.size(), g.quorum,
              g.policy_entry.c_str());
  for (const auto& a : g.approvals) {
    std::printf("             - %s at %s\n", a.principal.c_str(), Time(a.time).c_str());
  }
  std::printf("duration     %s from approval\n", FormatHumanDuration(g.duration).c_str());
  std::printf("decrypts     %s\n", Decrypts(g).c_str());
  std::printf("requested    %s\n", Time(g.requested).c_str());
  if (g.activated) {
    std::printf("active from  %s until %s\n", Time(*g.activated).c_str(), Time(g.expires).c_str());
  } else {
    std::printf("lapses       %s unless approved\n", Time(g.expires).c_str());
  }
  if (g.revoked) {
    std::printf("revoked      %s by %s\n", Time(*g.revoked).c_str(), g.revoked_by.c_str());
  }
}

void Print(const BreakGlassInfo& g, bool json) {
  if (json) {
    std::printf("%s\n", ToJson(g).dump().c_str());
  } else {
    PrintGrant(g);
  }
}

struct BreakGlassArgs {
  std::string key, reason, duration = "1h", id;
  std::vector<std::string> context;
  uint64_t max_decrypts = 0;
  bool all = false;
};

// A fresh checkpoint, verified: its signature under the key keywardd sent,
// that key being the one the client config pins (the trust anchor comes
// from outside what it verifies).
absl::StatusOr<audit::Checkpoint> VerifiedCheckpoint(AdminClient* client) {
  const std::string& pin = client->options().audit_checkpoint_key_fingerprint;
  if (pin.empty()) {
    return absl::FailedPreconditionError(
        "the report proves each record against a signed checkpoint, and needs the checkpoint "
        "key to trust: set audit.checkpoint_key_fingerprint in the client config (`keyward dev "
        "init` writes it)");
  }
  KW_ASSIGN_OR_RETURN(AuditCheckpointInfo info, client->GetAuditCheckpoint(true));
  KW_ASSIGN_OR_RETURN(audit::Checkpoint c, audit::ParseCheckpoint(info.line));
  KW_ASSIGN_OR_RETURN(std::string fingerprint, crypto::PublicKeyFingerprint(info.public_key_pem));
  if (fingerprint != c.key_fingerprint || fingerprint != pin) {
    return absl::DataLossError(absl::StrCat(
        "keywardd's checkpoint is signed by key ", fingerprint.substr(0, 16),
        " but the client config pins ", pin.substr(0, 16), "; the report cannot be trusted"));
  }
  if (!crypto::VerifyEcdsaP256(info.public_key_pem,
                               audit::CheckpointMessage(c.environment, c.tree_size, c.root, c.time),
                               c.signature)
           .ok()) {
    return absl::DataLossError("the checkpoint's signature does not verify");
  }
  return c;
}

absl::Status RunReport(AdminClient* client, const std::string& id, bool json) {
  KW_ASSIGN_OR_RETURN(BreakGlassInfo g, client->GetBreakGlass(id));
  KW_ASSIGN_OR_RETURN(audit::Checkpoint c, VerifiedCheckpoint(client));
  const std::string link = absl::StrCat("breakglass:", g.id);
  // Every record linked to the grant, from its request to the checkpoint.
  // Only the fields shown are read from each record; whether a record is in
  // the signed log is proven from the leaf hash keywardd gives with its
  // inclusion proof, never re-derived here from the record's encoding.
  struct Entry {
    uint64_t seq = 0;
    Json record;
    Json proof;
    bool verified = false;
  };
  std::vector<Entry> entries;
  AuditQuery q;
  q.since = g.requested - absl::Seconds(1);
  q.limit = 10000;
  for (;;) {
    KW_ASSIGN_OR_RETURN(AuditPage page, client->ReadAuditRecords(q));
    bool past = false;
    for (const std::string& line : page.records) {
      Json r = Json::parse(line, nullptr, false);
      if (!r.is_object() || !r.contains("seq") || !r["seq"].is_number_unsigned()) continue;
      const uint64_t seq = r["seq"].get<uint64_t>();
      if (seq >= c.tree_size) {
        past = true;
        break;
      }
      if (r.value("rule", "") != link) continue;
      Entry e;
      e.seq = seq;
      e.record = Json{{"seq", seq},
                      {"time", r.value("time", "")},
                      {"principal", r.value("principal", "")},
                      {"operation", r.value("operation", "")},
                      {"decision", r.value("decision", "")},
                      {"result", r.value("result", "")},
                      {"detail", r.value("detail", "")}};
      entries.push_back(std::move(e));
    }
    if (past || page.records.empty() || page.next_index >= page.size ||
        page.next_index >= c.tree_size) {
      break;
    }
    q.from_index = page.next_index;
  }
  bool all_verified = true;
  for (Entry& e : entries) {
    KW_ASSIGN_OR_RETURN(AuditInclusionProof p, client->GetInclusionProof(e.seq, c.tree_size));
    audit::Hash leaf{}, root{};
    std::vector<audit::Hash> path;
    bool shaped = p.leaf_hash.size() == leaf.size() && p.root_hash.size() == root.size() &&
                  p.tree_size == c.tree_size && p.index == e.seq;
    if (shaped) {
      std::copy(p.leaf_hash.begin(), p.leaf_hash.end(), leaf.begin());
      std::copy(p.root_hash.begin(), p.root_hash.end(), root.begin());
      for (const std::string& h : p.path) {
        if (h.size() != leaf.size()) shaped = false;
        audit::Hash node{};
        if (shaped) std::copy(h.begin(), h.end(), node.begin());
        path.push_back(node);
      }
    }
    // The root must be the signed checkpoint's, and the path must lead
    // from the leaf to it (RFC 9162 inclusion proof).
    e.verified = shaped && root == c.root && audit::VerifyInclusion(leaf, e.seq, c.tree_size, path, c.root);
    all_verified = all_verified && e.verified;
    Json hashes = Json::array();
    for (const std::string& h : p.path) hashes.push_back(Hex(h));
    e.proof = Json{{"leaf_hash", Hex(p.leaf_hash)}, {"path", hashes}, {"verified", e.verified}};
  }
  if (json) {
    Json records = Json::array();
    for (const Entry& e : entries) {
      Json r = e.record;
      r["inclusion_proof"] = e.proof;
      records.push_back(std::move(r));
    }
    Json out{{"grant", ToJson(g)},
             {"checkpoint",
              Json{{"environment", c.environment},
                   {"tree_size", c.tree_size},
                   {"root", audit::ToHex(c.root)},
                   {"time", Time(c.time)},
                   {"key_fingerprint", c.key_fingerprint}}},
             {"records", records},
             {"all_verified", all_verified}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    PrintGrant(g);
    std::printf("\n%zu audit records linked to %s, each proven against the checkpoint of %llu "
                "records (root %s..., signed %s by key %s...):\n",
                entries.size(), g.id.c_str(), static_cast<unsigned long long>(c.tree_size),
                audit::ToHex(c.root).substr(0, 16).c_str(), Time(c.time).c_str(),
                c.key_fingerprint.substr(0, 16).c_str());
    for (const Entry& e : entries) {
      std::printf("  #%-6llu %s  %-34s %-18s %-6s %-17s %s  [%s]\n",
                  static_cast<unsigned long long>(e.seq),
                  e.record["time"].get<std::string>().substr(0, 19).c_str(),
                  e.record["principal"].get<std::string>().c_str(),
                  e.record["operation"].get<std::string>().c_str(),
                  e.record["decision"].get<std::string>().c_str(),
                  e.record["result"].get<std::string>().c_str(),
                  e.record["detail"].get<std::string>().c_str(),
                  e.verified ? "proof ok" : "PROOF FAILED");
    }
  }
  if (!all_verified) {
    return absl::DataLossError(
        "some records of the break-glass grant are NOT proven to be in the signed audit log; "
        "run `keyward audit verify` on the log and treat the grant's trail as tampered");
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterBreakGlassCommands(CLI::App& app, Globals& globals, Action& action) {
  static BreakGlassArgs args;
  auto* bg = app.add_subcommand(
      "breakglass",
      "Emergency decrypt access with quorum approval, fully audited\n"
      "(docs/incident-response.md)");
  bg->require_subcommand(1);

  auto* request = bg->add_subcommand(
      "request",
      "Ask for decrypt access to one key, for a while and at most N times.\n"
      "It applies once the policy's quorum of other principals approved it.");
  request->add_option("--key", args.key, "the key name (not a glob)")->required();
  request->add_option("--context", args.context,
                      "KEY=VALUE every decrypt under the grant must carry; repeatable");
  request->add_option("--reason", args.reason, "why (the approvers and the review read it)")
      ->required();
  request->add_option("--duration", args.duration,
                      "how long it lasts once approved, e.g. 30m, 2h (default 1h)");
  request->add_option("--max-decrypts", args.max_decrypts,
                      "at most N decrypts (default: no count limit, only the time)");
  request->add_flag("--json", globals.json, "print one JSON object");
  request->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      BreakGlassSpec spec;
      spec.key = args.key;
      KW_ASSIGN_OR_RETURN(spec.context, ParsePairs(args.context, "--context"));
      KW_ASSIGN_OR_RETURN(spec.duration, ParseDurationFlag(args.duration, "--duration"));
      spec.reason = args.reason;
      spec.max_decrypts = args.max_decrypts;
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(BreakGlassInfo g, client->RequestBreakGlass(spec));
      Print(g, globals.json);
      if (!globals.json) {
        std::fflush(stdout);
        std::fprintf(stderr,
                     "\nkeyward: the request needs %d approval(s) from approvers other than you:\n"
                     "  keyward breakglass approve %s\n",
                     g.quorum, g.id.c_str());
      }
      return absl::OkStatus();
    };
  });

  auto* approve = bg->add_subcommand(
      "approve",
      "Approve a break-glass request (you must be one of its approvers and\n"
      "not its requester).  The grant applies once the quorum is reached.");
  approve->add_option("ID", args.id, "break-glass id (bg-...)")->required();
  approve->add_flag("--json", globals.json, "print one JSON object");
  approve->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(BreakGlassInfo g, client->ApproveBreakGlass(args.id));
      Print(g, globals.json);
      return absl::OkStatus();
    };
  });

  auto* list = bg->add_subcommand("list", "List break-glass grants you may read");
  list->add_flag("--all", args.all, "include grants that ended");
  list->add_flag("--json", globals.json, "print JSON lines, one grant per line");
  list->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(auto grants, client->ListBreakGlass(args.all));
      if (globals.json) {
        for (const auto& g : grants) std::printf("%s\n", ToJson(g).dump().c_str());
        return absl::OkStatus();
      }
      if (grants.empty()) {
        std::printf("no %sbreak-glass grants\n", args.all ? "" : "open ");
        return absl::OkStatus();
      }
      std::printf("%-19s %-9s %-30s %-20s %-9s %-14s %s\n", "ID", "STATE", "REQUESTER", "KEY",
                  "APPROVALS", "DECRYPTS", "EXPIRES");
      for (const auto& g : grants) {
        std::printf("%-19s %-9s %-30s %-20s %zu of %-4d %-14s %s\n", g.id.c_str(),
                    g.state.c_str(), g.requester.c_str(), g.key.c_str(), g.approvals.size(),
                    g.quorum,
                    g.max_decrypts == 0 ? absl::StrCat(g.decrypts).c_str()
                                        : absl::StrCat(g.decrypts, "/", g.max_decrypts).c_str(),
                    Time(g.expires).c_str());
      }
      return absl::OkStatus();
    };
  });

  auto* show = bg->add_subcommand("show", "Show one break-glass grant");
  show->add_option("ID", args.id, "break-glass id (bg-...)")->required();
  show->add_flag("--json", globals.json, "print one JSON object");
  show->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(BreakGlassInfo g, client->GetBreakGlass(args.id));
      Print(g, globals.json);
      return absl::OkStatus();
    };
  });

  auto* revoke = bg->add_subcommand(
      "revoke", "End a break-glass grant (or request) now, on every keywardd");
  revoke->add_option("ID", args.id, "break-glass id (bg-...)")->required();
  revoke->add_flag("--json", globals.json, "print one JSON object");
  revoke->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(BreakGlassInfo g, client->RevokeBreakGlass(args.id));
      Print(g, globals.json);
      return absl::OkStatus();
    };
  });

  auto* report = bg->add_subcommand(
      "report",
      "For the post-incident review: the grant and every audit record linked\n"
      "to it (request, approvals, each decrypt, refusals, revocation, end),\n"
      "each with its inclusion proof against a fresh signed checkpoint,\n"
      "verified here with the checkpoint key the client config pins.  Needs\n"
      "read-audit.  Exit 4 when a proof fails.");
  report->add_option("ID", args.id, "break-glass id (bg-...)")->required();
  report->add_flag("--json", globals.json, "print one JSON object");
  report->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      return RunReport(client, args.id, globals.json);
    };
  });
}

}  // namespace keyward::cli

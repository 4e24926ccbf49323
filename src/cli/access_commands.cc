// `keyward policy get|set|test` and `keyward grant create|list|revoke`:
// access control in keywardd (docs/policy.md).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "cli/files.h"
#include "cli/flags.h"
#include "keyward/io.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string Time(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

Json ToJson(const GrantInfo& g) {
  Json context = Json::object();
  for (const auto& [k, v] : g.context) context[k] = v;
  return Json{{"id", g.id},
              {"principal", g.principal},
              {"key", g.key},
              {"operations", g.operations},
              {"context", context},
              {"created", Time(g.created)},
              {"expires", Time(g.expires)},
              {"revoked", g.revoked ? Json(Time(*g.revoked)) : Json(nullptr)},
              {"created_by", g.created_by},
              {"reason", g.reason}};
}

std::string GrantState(const GrantInfo& g) {
  if (g.revoked) return "revoked";
  if (absl::Now() >= g.expires) return "expired";
  return "active";
}

void PrintGrant(const GrantInfo& g, bool json) {
  if (json) {
    std::printf("%s\n", ToJson(g).dump().c_str());
    return;
  }
  std::vector<std::string> ctx;
  for (const auto& [k, v] : g.context) ctx.push_back(k + "=" + v);
  std::printf("grant       %s (%s)\n", g.id.c_str(), GrantState(g).c_str());
  std::printf("principal   %s\n", g.principal.c_str());
  std::printf("key         %s\n", g.key.c_str());
  std::printf("operations  %s\n", absl::StrJoin(g.operations, ", ").c_str());
  std::printf("context     %s\n", ctx.empty() ? "-" : absl::StrJoin(ctx, ", ").c_str());
  std::printf("expires     %s\n", Time(g.expires).c_str());
  if (g.revoked) std::printf("revoked     %s\n", Time(*g.revoked).c_str());
  std::printf("created by  %s at %s\n", g.created_by.c_str(), Time(g.created).c_str());
  if (!g.reason.empty()) std::printf("reason      %s\n", g.reason.c_str());
}

absl::StatusOr<std::string> ReadAllInput(const std::string& path) {
  KW_ASSIGN_OR_RETURN(auto input, Input::Open(path));
  std::string out;
  uint8_t buf[8192];
  for (;;) {
    KW_ASSIGN_OR_RETURN(size_t n, input->stream().Read(absl::MakeSpan(buf)));
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(buf), n);
    if (out.size() > (1 << 20)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is over 1 MiB; that is not a policy file"));
    }
  }
  return out;
}

struct AccessArgs {
  std::string file;
  std::string output;
  std::string principal, key, operation;
  std::vector<std::string> operations;
  std::vector<std::string> context;
  std::string ttl = "1h";
  std::string reason;
  std::string id;
  bool all = false;
};

}  // namespace

void RegisterAccessCommands(CLI::App& app, Globals& globals, Action& action) {
  static AccessArgs args;
  auto* policy = app.add_subcommand(
      "policy", "Read, replace and try out keywardd's access policy (docs/policy.md)");
  policy->require_subcommand(1);

  auto* get = policy->add_subcommand("get", "Print the policy in force (YAML)");
  get->add_option("-o,--output", args.output, "write it to FILE instead of stdout");
  get->add_flag("--json", globals.json, "print {\"yaml\": ...}");
  get->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(std::string yaml, client->GetPolicy());
      std::string out = globals.json ? Json{{"yaml", yaml}}.dump() + "\n" : yaml;
      KW_ASSIGN_OR_RETURN(auto output, AtomicOutput::Create(args.output, 0644));
      KW_RETURN_IF_ERROR(output->stream().Write(out));
      return output->Commit();
    };
  });

  auto* set = policy->add_subcommand(
      "set",
      "Replace the policy with FILE ('-' for stdin).  keywardd checks it\n"
      "first; a policy with a mistake is refused and the old one stays.");
  set->add_option("FILE", args.file, "policy YAML, or - for stdin")->required();
  set->add_flag("--json", globals.json, "print one JSON object");
  set->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(std::string yaml, ReadAllInput(args.file));
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_RETURN_IF_ERROR(client->SetPolicy(yaml).status());
      if (globals.json) {
        std::printf("%s\n", Json{{"ok", true}, {"bytes", yaml.size()}}.dump().c_str());
      } else {
        std::printf("policy replaced; keywardd uses it from now on\n");
      }
      return absl::OkStatus();
    };
  });

  auto* test = policy->add_subcommand(
      "test",
      "Ask keywardd what it would decide, without doing anything.\n"
      "Exit code 0 when allowed, 5 when denied.");
  test->add_option("--principal", args.principal,
                   "the caller, e.g. spiffe://keyward.dev/app")
      ->required();
  test->add_option("--key", args.key, "key name ('*' for operations on no key)")
      ->required();
  test->add_option("--op", args.operation,
                   "operation: encrypt, generate-data-key, decrypt, rewrap, describe,\n"
                   "create-key, rotate-key, ... (docs/policy.md)")
      ->required();
  test->add_option("--context", args.context, "KEY=VALUE of the encryption context; repeatable");
  test->add_flag("--json", globals.json, "print one JSON object");
  test->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(auto context, ParsePairs(args.context, "--context"));
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(PolicyDecision d, client->TestPolicy(args.principal, args.key,
                                                               args.operation, context));
      if (globals.json) {
        std::printf("%s\n", Json{{"allowed", d.allowed},
                                 {"decision", d.allowed ? "allow" : "deny"},
                                 {"rule", d.rule},
                                 {"reason", d.reason}}
                                .dump()
                                .c_str());
      } else {
        std::printf("%s  %s\n", d.allowed ? "ALLOW" : "DENY", d.reason.c_str());
      }
      if (d.allowed) return absl::OkStatus();
      return absl::PermissionDeniedError("the policy denies this request");
    };
  });

  auto* grant = app.add_subcommand(
      "grant", "Give, list and revoke time-limited permissions (docs/policy.md)");
  grant->require_subcommand(1);

  auto* create = grant->add_subcommand(
      "create",
      "Let PRINCIPAL do OPs on KEY for a while (at most 90 days).  Grants\n"
      "only allow: a deny rule in the policy still wins.");
  create->add_option("--principal", args.principal, "who receives it")->required();
  create->add_option("--key", args.key, "key name or glob, e.g. payments/*")->required();
  create->add_option("--op", args.operations, "operation; repeatable")->required();
  create->add_option("--context", args.context,
                     "KEY=VALUE the request's encryption context must carry; repeatable");
  create->add_option("--ttl", args.ttl, "how long it lasts, e.g. 30m, 8h (default 1h)");
  create->add_option("--reason", args.reason, "why (recorded with the grant)");
  create->add_flag("--json", globals.json, "print one JSON object");
  create->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      GrantSpec spec;
      spec.principal = args.principal;
      spec.key = args.key;
      spec.operations = args.operations;
      KW_ASSIGN_OR_RETURN(spec.context, ParsePairs(args.context, "--context"));
      KW_ASSIGN_OR_RETURN(spec.ttl, ParseDurationFlag(args.ttl, "--ttl"));
      spec.reason = args.reason;
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(GrantInfo g, client->CreateGrant(spec));
      PrintGrant(g, globals.json);
      return absl::OkStatus();
    };
  });

  auto* list = grant->add_subcommand("list", "List active grants");
  list->add_flag("--all", args.all, "include expired and revoked grants");
  list->add_flag("--json", globals.json, "print JSON lines, one grant per line");
  list->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(auto grants, client->ListGrants(args.all));
      if (globals.json) {
        for (const auto& g : grants) std::printf("%s\n", ToJson(g).dump().c_str());
        return absl::OkStatus();
      }
      if (grants.empty()) {
        std::printf("no %sgrants\n", args.all ? "" : "active ");
        return absl::OkStatus();
      }
      std::printf("%-20s %-8s %-36s %-24s %-28s %s\n", "ID", "STATE", "PRINCIPAL", "KEY",
                  "OPERATIONS", "EXPIRES");
      for (const auto& g : grants) {
        std::printf("%-20s %-8s %-36s %-24s %-28s %s\n", g.id.c_str(),
                    GrantState(g).c_str(), g.principal.c_str(), g.key.c_str(),
                    absl::StrJoin(g.operations, ",").c_str(), Time(g.expires).c_str());
      }
      return absl::OkStatus();
    };
  });

  auto* revoke = grant->add_subcommand("revoke", "Revoke a grant now");
  revoke->add_option("ID", args.id, "grant id (from `keyward grant list`)")->required();
  revoke->add_flag("--json", globals.json, "print one JSON object");
  revoke->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(GrantInfo g, client->RevokeGrant(args.id));
      PrintGrant(g, globals.json);
      return absl::OkStatus();
    };
  });
}

}  // namespace keyward::cli

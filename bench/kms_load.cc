// Load generator for keywardd over mutual TLS on loopback: keeps N calls in
// flight with gRPC's callback API and reports ops/s and p50/p99 latency,
// beside a no-op call (GetServerInfo) on the same server and channels: the
// ceiling the transport allows.  Used by bench/load_bench.sh, which starts
// the server.
//   kms_load --config app.yaml --admin admin.yaml [--seconds 3]
//            [--concurrency 1,16,64] [--server-pid PID] [--only OP[,OP...]]
//            [--json-out FILE]
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_split.h"
#include "keyward/admin_client.h"
#include "keyward/data_client.h"
#include "keyward/v1/keyward.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "server/server.h"

namespace {

using Clock = std::chrono::steady_clock;
using keyward::v1::KeyManagement;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

long RssKiB(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

struct Result {
  double ops_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  uint64_t errors = 0;
  long rss_kib = -1;
};

// Issues calls of one kind, `concurrency` at a time, for `seconds`.
template <typename Issue>
Result RunLoad(int concurrency, double seconds, int server_pid, Issue issue) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> latencies;
  latencies.reserve(1 << 20);
  std::atomic<uint64_t> errors{0};
  std::atomic<int> active{concurrency};
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  std::function<void()> next;
  // Each slot loops: issue, record, issue again until the deadline.
  std::function<void(int)> start_one = [&](int) {};
  struct Slot {
    std::function<void()> go;
  };
  std::vector<Slot> slots(concurrency);
  for (int i = 0; i < concurrency; ++i) {
    slots[i].go = [&, i] {
      const auto t0 = Clock::now();
      issue([&, i, t0](bool ok) {
        const auto t1 = Clock::now();
        // A refused call is quick and proves nothing: it counts as an
        // error, not towards the rate or the latencies.
        if (!ok) {
          ++errors;
        } else {
          std::lock_guard<std::mutex> lock(mu);
          latencies.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        }
        if (t1 < end) {
          slots[i].go();
        } else if (--active == 0) {
          std::lock_guard<std::mutex> lock(mu);
          cv.notify_all();
        }
      });
    };
  }
  const auto t_start = Clock::now();
  for (auto& s : slots) s.go();
  long rss = -1;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds / 2));
  if (server_pid > 0) rss = RssKiB(server_pid);
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return active.load() == 0; });
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - t_start).count();
  Result r;
  std::sort(latencies.begin(), latencies.end());
  r.ops_per_s = latencies.size() / elapsed;
  if (!latencies.empty()) {
    r.p50_ms = latencies[latencies.size() / 2];
    r.p99_ms = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  r.errors = errors;
  r.rss_kib = rss;
  return r;
}

// One thread running what it is handed, in order.
class Relay {
 public:
  Relay() : thread_([this] { Loop(); }) {}
  ~Relay() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Post(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(f));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto f = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      f();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// The reference: a bare callback service over the same mutual TLS 1.3, with
// nothing behind GetServerInfo.  KMS_BARE_HOPS=N answers after N hand-offs
// between threads instead of on gRPC's thread: what moving a call across
// threads costs, with no work done.
class BareService final : public KeyManagement::CallbackService {
 public:
  explicit BareService(int hops) : relays_(hops) {}

 private:
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* ctx,
                                          const keyward::v1::GetServerInfoRequest*,
                                          keyward::v1::ServerInfo*) override {
    auto* r = ctx->DefaultReactor();
    if (relays_.empty()) {
      r->Finish(grpc::Status::OK);
    } else {
      Forward(0, r);
    }
    return r;
  }
  void Forward(size_t i, grpc::ServerUnaryReactor* r) {
    if (i == relays_.size()) return r->Finish(grpc::Status::OK);
    relays_[i].Post([this, i, r] { Forward(i + 1, r); });
  }
  std::vector<Relay> relays_;
};

int RunBareServer(const std::string& dev_dir, const std::string& listen) {
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      Read(dev_dir + "/certs/ca.pem"),
      std::vector<grpc::experimental::IdentityKeyCertPair>{
          {Read(dev_dir + "/certs/server.key"), Read(dev_dir + "/certs/server.pem")}});
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  const char* hops = std::getenv("KMS_BARE_HOPS");
  BareService service(hops != nullptr ? std::atoi(hops) : 0);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::experimental::TlsServerCredentials(tls));
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  server->Wait();
  return 0;
}

std::shared_ptr<grpc::ChannelCredentials> Credentials(const keyward::ClientOptions& o) {
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      Read(o.ca_file), std::vector<grpc::experimental::IdentityKeyCertPair>{
                           {Read(o.key_file), Read(o.cert_file)}});
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(provider);
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsCredentials(tls);
}

std::vector<std::unique_ptr<KeyManagement::Stub>> MakeStubs(const keyward::ClientOptions& o,
                                                            int channels) {
  auto creds = Credentials(o);
  std::vector<std::unique_ptr<KeyManagement::Stub>> stubs;
  for (const std::string& server : o.servers) {
    for (int i = 0; i < channels; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", i);  // distinct connections
      stubs.push_back(KeyManagement::NewStub(grpc::CreateCustomChannel(server, creds, args)));
    }
  }
  return stubs;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc == 4 && std::string(argv[1]) == "--bare-server") {
    // The same TLS 1.3-only settings as keywardd.
    keyward::server::EnforceTls13Only().IgnoreError();
    return RunBareServer(argv[2], argv[3]);
  }
  std::string bare_address;
  std::string config, admin;
  double seconds = 3;
  std::vector<int> concurrencies = {1, 16, 64};
  int server_pid = 0;
  std::string only;  // run just this operation (e.g. DecryptDataKey)
  std::string json_out = "build/bench/kms_load.json";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--config") config = v;
    else if (a == "--admin") admin = v;
    else if (a == "--seconds") seconds = std::stod(v);
    else if (a == "--server-pid") server_pid = std::stoi(v);
    else if (a == "--bare") bare_address = v;
    else if (a == "--only") only = v;
    else if (a == "--json-out") json_out = v;
    else if (a == "--concurrency") {
      concurrencies.clear();
      for (auto c : absl::StrSplit(v, ',')) concurrencies.push_back(std::stoi(std::string(c)));
    }
  }
  auto options = keyward::LoadClientConfig(config);
  auto admin_options = keyward::LoadClientConfig(admin);
  if (!options.ok() || !admin_options.ok()) {
    std::fprintf(stderr, "kms_load: bad --config/--admin\n");
    return 2;
  }
  // Set up a key and a wrapped data key through the SDK.
  auto admin_client = keyward::AdminClient::Connect(*admin_options);
  if (!admin_client.ok()) {
    std::fprintf(stderr, "%s\n", admin_client.status().ToString().c_str());
    return 1;
  }
  (void)(*admin_client)->CreateKey("bench/load");
  auto app = keyward::DataClient::Connect(*options);
  auto sample = (*app)->GenerateDataKey("bench/load", {{"tenant", "acme"}});
  if (!sample.ok()) {
    std::fprintf(stderr, "%s\n", sample.status().ToString().c_str());
    return 1;
  }
  const std::string wrapped = sample->encrypted.ciphertext;

  // One connection per server, as the SDK uses (KMS_LOAD_CHANNELS=N for
  // more: higher tail latency on this 2-core machine); calls go round-robin
  // over every server the config lists.
  const int channels = std::getenv("KMS_LOAD_CHANNELS") ? std::atoi(std::getenv("KMS_LOAD_CHANNELS")) : 1;
  std::vector<std::unique_ptr<KeyManagement::Stub>> stubs = MakeStubs(*options, channels);
  std::vector<std::unique_ptr<KeyManagement::Stub>> admin_stubs = MakeStubs(*admin_options, 1);
  std::atomic<uint64_t> rr{0}, admin_rr{0};
  auto stub = [&]() -> KeyManagement::Stub* { return stubs[rr++ % stubs.size()].get(); };
  auto admin_stub = [&]() -> KeyManagement::Stub* {
    return admin_stubs[admin_rr++ % admin_stubs.size()].get();
  };
  const std::shared_ptr<grpc::ChannelCredentials> creds = Credentials(*options);

  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  if (server_pid > 0) {
    out.push_back({{"op", "idle"}, {"rss_kib", RssKiB(server_pid)}});
  }
  // --only takes a comma-separated list; CreateKey and RotateKey run only
  // when named (they change the key store).
  const std::vector<std::string> only_list = absl::StrSplit(only, ',', absl::SkipEmpty());
  auto named = [&](const char* op) {
    return std::find(only_list.begin(), only_list.end(), op) != only_list.end();
  };
  auto want = [&](const char* op) { return only_list.empty() || named(op); };
  auto record = [&](const char* op, int c, const Result& r) {
    std::printf("%-30s %4d %12.0f %9.2f %9.2f %7llu %10ld\n", op, c, r.ops_per_s, r.p50_ms,
                r.p99_ms, static_cast<unsigned long long>(r.errors), r.rss_kib);
    std::fflush(stdout);
    out.push_back({{"op", op}, {"concurrency", c}, {"ops_per_s", r.ops_per_s},
                   {"p50_ms", r.p50_ms}, {"p99_ms", r.p99_ms}, {"errors", r.errors},
                   {"rss_kib", r.rss_kib}});
  };
  std::printf("%-30s %4s %12s %9s %9s %7s %10s\n", "operation", "conc", "ops/s", "p50 ms",
              "p99 ms", "errors", "rss KiB");
  std::unique_ptr<KeyManagement::Stub> bare;
  if (!bare_address.empty()) {
    bare = KeyManagement::NewStub(grpc::CreateChannel(bare_address, creds));
  }
  for (int c : concurrencies) {
    if (bare && want("bare")) {
      record("bare gRPC service (no-op)", c, RunLoad(c, seconds, 0, [&](auto done) {
               auto* ctx = new grpc::ClientContext();
               auto* req = new keyward::v1::GetServerInfoRequest();
               auto* resp = new keyward::v1::ServerInfo();
               bare->async()->GetServerInfo(ctx, req, resp, [=](grpc::Status s) {
                 delete ctx; delete req; delete resp;
                 done(s.ok());
               });
             }));
    }
    if (want("GetServerInfo")) record("GetServerInfo (no-op)", c, RunLoad(c, seconds, server_pid, [&](auto done) {
             auto* ctx = new grpc::ClientContext();
             auto* req = new keyward::v1::GetServerInfoRequest();
             auto* resp = new keyward::v1::ServerInfo();
             stub()->async()->GetServerInfo(ctx, req, resp, [=](grpc::Status s) {
               delete ctx; delete req; delete resp;
               done(s.ok());
             });
           }));
    if (want("GenerateDataKey")) record("GenerateDataKey", c, RunLoad(c, seconds, server_pid, [&](auto done) {
             auto* ctx = new grpc::ClientContext();
             auto* req = new keyward::v1::GenerateDataKeyRequest();
             req->set_key_name("bench/load");
             (*req->mutable_encryption_context())["tenant"] = "acme";
             auto* resp = new keyward::v1::GenerateDataKeyResponse();
             stub()->async()->GenerateDataKey(ctx, req, resp, [=](grpc::Status s) {
               delete ctx; delete req; delete resp;
               done(s.ok());
             });
           }));
    if (want("DecryptDataKey")) record("DecryptDataKey", c, RunLoad(c, seconds, server_pid, [&](auto done) {
             auto* ctx = new grpc::ClientContext();
             auto* req = new keyward::v1::DecryptDataKeyRequest();
             req->set_wrapped(wrapped);
             (*req->mutable_encryption_context())["tenant"] = "acme";
             auto* resp = new keyward::v1::DecryptDataKeyResponse();
             stub()->async()->DecryptDataKey(ctx, req, resp, [=](grpc::Status s) {
               delete ctx; delete req; delete resp;
               done(s.ok());
             });
           }));
    // Key management through the admin principal: every call a
    // transaction in the key store (and an HSM operation for the new KEK).
    std::atomic<uint64_t> created{0};
    const std::string prefix = absl::StrCat("bench/created-", ::getpid(), "-", c, "/");
    if (named("CreateKey")) record("CreateKey", c, RunLoad(c, seconds, server_pid, [&](auto done) {
             auto* ctx = new grpc::ClientContext();
             auto* req = new keyward::v1::CreateKeyRequest();
             req->set_name(absl::StrCat(prefix, created++));
             auto* resp = new keyward::v1::Key();
             admin_stub()->async()->CreateKey(ctx, req, resp, [=](grpc::Status s) {
               delete ctx; delete req; delete resp;
               done(s.ok());
             });
           }));
    // Rotations spread over 64 keys (concurrent rotations of one key
    // conflict and retry, which is not what this measures).
    std::atomic<uint64_t> rotated{0};
    if (named("RotateKey")) {
      for (int k = 0; k < 64; ++k) {
        grpc::ClientContext ctx;
        keyward::v1::CreateKeyRequest req;
        req.set_name(absl::StrCat("bench/rotated-", k));
        keyward::v1::Key resp;
        (void)admin_stub()->CreateKey(&ctx, req, &resp);
      }
      record("RotateKey", c, RunLoad(c, seconds, server_pid, [&](auto done) {
               auto* ctx = new grpc::ClientContext();
               auto* req = new keyward::v1::RotateKeyRequest();
               req->set_name(absl::StrCat("bench/rotated-", rotated++ % 64));
               auto* resp = new keyward::v1::Key();
               admin_stub()->async()->RotateKey(ctx, req, resp, [=](grpc::Status s) {
                 delete ctx; delete req; delete resp;
                 done(s.ok());
               });
             }));
    }
  }
  // Batches of 1,000 wrapped keys per call.
  keyward::v1::BatchDecryptDataKeysRequest batch;
  for (int i = 0; i < 1000; ++i) {
    auto* r = batch.add_requests();
    r->set_wrapped(wrapped);
    (*r->mutable_encryption_context())["tenant"] = "acme";
  }
  for (int c : {1, 4}) {
    if (!want("BatchDecryptDataKeys")) break;
    Result r = RunLoad(c, seconds, server_pid, [&](auto done) {
      auto* ctx = new grpc::ClientContext();
      auto* resp = new keyward::v1::BatchDecryptDataKeysResponse();
      stub()->async()->BatchDecryptDataKeys(ctx, &batch, resp, [=](grpc::Status s) {
        delete ctx; delete resp;
        done(s.ok());
      });
    });
    std::printf("%-30s %4d %12.0f keys/s  (%0.0f calls/s, p50 %.2f ms, p99 %.2f ms, rss %ld KiB)\n",
                "BatchDecryptDataKeys x1000", c, r.ops_per_s * 1000, r.ops_per_s, r.p50_ms,
                r.p99_ms, r.rss_kib);
    out.push_back({{"op", "BatchDecryptDataKeys x1000"}, {"concurrency", c},
                   {"keys_per_s", r.ops_per_s * 1000}, {"p50_ms", r.p50_ms},
                   {"p99_ms", r.p99_ms}, {"errors", r.errors}, {"rss_kib", r.rss_kib}});
  }
  std::ofstream(json_out) << out.dump(2) << "\n";
  return 0;
}

// flood_client: one principal flooding keywardd with maximal requests, for
// the fairness test (security_e2e_test) and bench/fairness_bench.sh.  A
// process of its own, as a flooding client would be on its own machine.
//
//   flood_client PORT CA CERT KEY MODE THREADS SECONDS
//
// MODE: valid (BatchGenerateDataKeys of 10,000 under key "victim"),
// invalid (GenerateDataKey with a 3.5 MB, 330,000-entry context), or mixed
// (half each).  Each thread sends one request at a time, as fast as the
// answers come.  Prints "calls N refused M" at the end.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "keyward/v1/keyward.pb.h"

namespace {

std::string Read(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: flood_client PORT CA CERT KEY valid|invalid|mixed THREADS SECONDS\n");
    return 2;
  }
  const std::string target = absl::StrCat("127.0.0.1:", argv[1]);
  const std::string ca = Read(argv[2]), cert = Read(argv[3]), key = Read(argv[4]);
  const std::string mode = argv[5];
  const int threads = std::atoi(argv[6]);
  const absl::Duration duration = absl::Seconds(std::atoi(argv[7]));

  keyward::v1::GenerateDataKeyRequest huge;
  huge.set_key_name("victim");
  for (int i = 0; i < 330000; ++i) (*huge.mutable_encryption_context())[absl::StrCat(i)] = "";
  keyward::v1::BatchGenerateDataKeysRequest big;
  big.set_key_name("victim");
  big.set_count(10000);
  const std::string huge_bytes = huge.SerializeAsString(), big_bytes = big.SerializeAsString();

  std::atomic<int> calls{0}, refused{0};
  const absl::Time end = absl::Now() + duration;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
          ca, std::vector<grpc::experimental::IdentityKeyCertPair>{{key, cert}});
      grpc::experimental::TlsChannelCredentialsOptions tls;
      tls.set_certificate_provider(provider);
      tls.watch_root_certs();
      tls.watch_identity_key_cert_pairs();
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(64 << 20);
      args.SetMaxSendMessageSize(64 << 20);
      auto channel =
          grpc::CreateCustomChannel(target, grpc::experimental::TlsCredentials(tls), args);
      grpc::GenericStub stub(channel);
      const bool valid = mode == "valid" || (mode == "mixed" && t % 2 == 0);
      const std::string& bytes = valid ? big_bytes : huge_bytes;
      const std::string method = valid ? "/keyward.v1.KeyManagement/BatchGenerateDataKeys"
                                       : "/keyward.v1.KeyManagement/GenerateDataKey";
      while (absl::Now() < end) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        grpc::Slice slice(bytes);
        grpc::ByteBuffer req(&slice, 1), resp;
        std::promise<grpc::Status> done;
        stub.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp,
                       [&done](grpc::Status s) { done.set_value(std::move(s)); });
        const grpc::Status s = done.get_future().get();
        ++calls;
        if (!s.ok()) ++refused;
      }
    });
  }
  for (auto& w : workers) w.join();
  std::printf("calls %d refused %d\n", calls.load(), refused.load());
  return 0;
}

# Every external library comes from Debian's packages (scripts/install-deps).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(absl REQUIRED)
find_package(nlohmann_json REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
# Unicode case mapping and NFKC for blind index transforms (src/fields).
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET GLOBAL libutf8proc)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(yaml-cpp REQUIRED)
# The application databases of field-level encryption (src/appdb), part of
# libkeyward: found here so the library target sees them.
find_package(SQLite3 REQUIRED)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET GLOBAL libpq)
find_program(KW_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

if(KEYWARD_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(KEYWARD_BUILD_BENCH AND NOT KEYWARD_FUZZ)
  find_package(benchmark REQUIRED)
endif()

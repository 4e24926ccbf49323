# Every external library comes from Debian's packages (scripts/install-deps).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(absl REQUIRED)
find_package(nlohmann_json REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)

if(KEYWARD_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(KEYWARD_BUILD_BENCH AND NOT KEYWARD_FUZZ)
  find_package(benchmark REQUIRED)
endif()

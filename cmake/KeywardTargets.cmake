# One small helper per target kind: kw_library, kw_binary, kw_test,
# kw_fuzzer, kw_bench.  Each takes SRCS and DEPS.

set(KEYWARD_WARNINGS -Wall -Wextra -Wshadow -Wnon-virtual-dtor
    -Wimplicit-fallthrough -Wformat=2
    # Designated initializers leave the other fields at their defaults on
    # purpose.
    -Wno-missing-field-initializers)
if(KEYWARD_WERROR)
  list(APPEND KEYWARD_WARNINGS -Werror)
endif()

if(KEYWARD_SANITIZE)
  add_compile_options(-fsanitize=${KEYWARD_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${KEYWARD_SANITIZE})
endif()
if(KEYWARD_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
  add_custom_target(fuzzers)
endif()

function(_kw_common target)
  target_compile_options(${target} PRIVATE ${KEYWARD_WARNINGS})
  target_include_directories(${target} PRIVATE
    ${PROJECT_SOURCE_DIR}/src ${PROJECT_BINARY_DIR}/src)
endfunction()

# kw_library(name SRCS ... DEPS ...): a static library under src/.
function(kw_library name)
  cmake_parse_arguments(KW "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${KW_SRCS})
  _kw_common(${name})
  target_include_directories(${name} PUBLIC
    ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src
    ${PROJECT_BINARY_DIR}/src)
  target_link_libraries(${name} PUBLIC ${KW_DEPS})
endfunction()

# kw_binary(name SRCS ... DEPS ...): an installed executable.
function(kw_binary name)
  cmake_parse_arguments(KW "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${KW_SRCS})
  _kw_common(${name})
  target_link_libraries(${name} PRIVATE ${KW_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
    ${PROJECT_BINARY_DIR}/bin)
endfunction()

# kw_test(name SRCS ... DEPS ... [LABELS ...]): a GoogleTest binary, one CTest
# entry.  Tests run from the repository root so relative paths such as
# ../shared/testvectors resolve as documented.
function(kw_test name)
  if(NOT KEYWARD_BUILD_TESTS OR KEYWARD_FUZZ)
    return()
  endif()
  cmake_parse_arguments(KW "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${KW_SRCS})
  _kw_common(${name})
  target_link_libraries(${name} PRIVATE ${KW_DEPS} kw_testing
    GTest::gmock GTest::gtest GTest::gmock_main)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
    ${PROJECT_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  if(NOT KW_TIMEOUT)
    set(KW_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${KW_TIMEOUT}
    LABELS "${KW_LABELS}")
endfunction()

# kw_fuzzer(name SRCS ... DEPS ...): a libFuzzer target, built only in the
# fuzz preset (clang).
function(kw_fuzzer name)
  if(NOT KEYWARD_FUZZ)
    return()
  endif()
  cmake_parse_arguments(KW "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${KW_SRCS})
  _kw_common(${name})
  target_link_libraries(${name} PRIVATE ${KW_DEPS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
    ${PROJECT_BINARY_DIR}/fuzz)
  add_dependencies(fuzzers ${name})
endfunction()

# kw_bench(name SRCS ... DEPS ...): a Google Benchmark binary under bench/.
function(kw_bench name)
  if(NOT KEYWARD_BUILD_BENCH OR KEYWARD_FUZZ)
    return()
  endif()
  cmake_parse_arguments(KW "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${KW_SRCS})
  _kw_common(${name})
  target_link_libraries(${name} PRIVATE ${KW_DEPS} benchmark::benchmark)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
    ${PROJECT_BINARY_DIR}/bench)
endfunction()

# kw_e2e_test(name SRCS ... DEPS ... [LABELS ...] [TIMEOUT s]): a kw_test that
# drives the real binaries; KEYWARD_CLI and KEYWARDD name them.
function(kw_e2e_test name)
  kw_test(${name} ${ARGN})
  if(TARGET ${name})
    target_compile_definitions(${name} PRIVATE
      KEYWARD_CLI="$<TARGET_FILE:keyward>" KEYWARDD="$<TARGET_FILE:keywardd>")
    add_dependencies(${name} keyward keywardd)
  endif()
endfunction()

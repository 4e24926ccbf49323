# libkeyward as a product: one library (shared with a versioned SONAME, and
# static) built from the SDK's parts, its public headers, a CMake package
# (find_package(Keyward CONFIG) -> Keyward::keyward, Keyward::keyward_static)
# and keyward.pc; plus the binaries, the systemd unit and the example
# configs.  `cmake --install build/release --prefix DIR` or
# `make install PREFIX=DIR`; `make package` builds the Debian package.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# include/keyward/version.h states the release; it must agree with project().
file(STRINGS ${PROJECT_SOURCE_DIR}/include/keyward/version.h _kw_version_line
     REGEX "kVersion\\[\\] = ")
if(NOT _kw_version_line MATCHES "\"${PROJECT_VERSION}\"")
  message(FATAL_ERROR "include/keyward/version.h does not say ${PROJECT_VERSION}")
endif()

# The internal libraries that implement include/keyward/ (and nothing else:
# no server, key store or HSM code goes into the SDK).
set(KEYWARD_SDK_PARTS kw_base kw_crypto kw_format kw_appdb kw_sdk kw_client kw_fields kw_capi kw_proto)
set(_kw_objects "")
set(_kw_external "")
foreach(part IN LISTS KEYWARD_SDK_PARTS)
  list(APPEND _kw_objects $<TARGET_OBJECTS:${part}>)
  get_target_property(_deps ${part} LINK_LIBRARIES)
  foreach(dep IN LISTS _deps)
    # nlohmann_json is header-only: nothing to link, nothing to find.
    if(NOT dep MATCHES "^kw_" AND NOT dep STREQUAL "nlohmann_json::nlohmann_json")
      list(APPEND _kw_external ${dep})
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES _kw_external)
# What the public headers themselves include.
set(KEYWARD_PUBLIC_DEPS absl::status absl::statusor absl::strings absl::time absl::span)

foreach(kind shared static)
  if(kind STREQUAL "shared")
    set(tgt keyward_sdk)
    add_library(${tgt} SHARED ${_kw_objects})
    set_target_properties(${tgt} PROPERTIES
      VERSION ${PROJECT_VERSION}
      # 0.x releases may change the ABI at every minor version.
      SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
      EXPORT_NAME keyward)
  else()
    set(tgt keyward_sdk_static)
    add_library(${tgt} STATIC ${_kw_objects})
    set_target_properties(${tgt} PROPERTIES EXPORT_NAME keyward_static)
  endif()
  set_target_properties(${tgt} PROPERTIES OUTPUT_NAME keyward
    ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib
    LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
  target_include_directories(${tgt} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${tgt} PUBLIC cxx_std_20)
  target_link_libraries(${tgt} PUBLIC ${KEYWARD_PUBLIC_DEPS} PRIVATE ${_kw_external})
endforeach()
add_library(Keyward::keyward ALIAS keyward_sdk)
add_library(Keyward::keyward_static ALIAS keyward_sdk_static)

install(TARGETS keyward_sdk keyward_sdk_static EXPORT KeywardTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/keyward
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
set(KEYWARD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Keyward)
install(EXPORT KeywardTargets NAMESPACE Keyward:: DESTINATION ${KEYWARD_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/install/KeywardConfig.cmake.in
  ${PROJECT_BINARY_DIR}/KeywardConfig.cmake INSTALL_DESTINATION ${KEYWARD_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/KeywardConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/KeywardConfig.cmake
              ${PROJECT_BINARY_DIR}/KeywardConfigVersion.cmake
        DESTINATION ${KEYWARD_CMAKE_DIR})
# keyward.pc finds its prefix relative to itself (the same file serves a
# package under /usr and `make install PREFIX=...`).
file(RELATIVE_PATH KEYWARD_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${PROJECT_SOURCE_DIR}/cmake/install/keyward.pc.in
               ${PROJECT_BINARY_DIR}/keyward.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/keyward.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS keyward keywardd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The Python package (ctypes over the C API; no compiled extension).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/python/keyward
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/python3/dist-packages
        FILES_MATCHING PATTERN "*.py")
install(FILES ${PROJECT_SOURCE_DIR}/deploy/keywardd.production.yaml
              ${PROJECT_SOURCE_DIR}/deploy/policy.production.yaml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/keyward/examples)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/sdk.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The unit names keywardd where it is installed (decided at install time, so
# a package built for /usr says /usr/bin/keywardd).
install(CODE "set(KEYWARD_UNIT_SOURCE \"${PROJECT_SOURCE_DIR}/deploy/systemd/keywardd.service\")")
install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/install/InstallUnit.cmake)

# Debian package: `cpack -G DEB` in the build directory (make package).
set(CPACK_PACKAGE_NAME keyward)
set(CPACK_PACKAGE_VENDOR "Keyward")
set(CPACK_PACKAGE_CONTACT "Keyward maintainers <keyward@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Keyward key management service (keywardd), CLI and client SDK (libkeyward)")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# SoftHSM is what `keyward dev init` and the default setup use.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "softhsm2")
# A shlibs file for libkeyward and the ldconfig trigger (no maintainer
# scripts, so `dpkg -r` leaves nothing behind, not even a config-files state).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
include(CPack)

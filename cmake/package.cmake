# SPDX-License-Identifier: MIT
# Debian packages with CPack: `cpack -G DEB` in a build tree configured
# with -DCMAKE_INSTALL_PREFIX=/usr (so that the library goes to the
# multiarch directory, /usr/lib/<triplet>) writes one package per install
# component (cmake/install.cmake):
#
#   libsegops<SOVERSION>  the shared library, LICENSE, CHANGELOG.md
#                         (libsegops0.2 for 0.2.x: the package is named after
#                         the soname, so two ABIs can be installed at once)
#   libsegops-dev         headers, libsegops.so, libsegops.a, segops.pc, the
#                         CMake package; depends on the exact runtime package
#                         and on the -dev packages the static library and
#                         segops.pc need
#   segops-tools          segops-send, segops-sink
#
# Run-time dependencies are computed by dpkg-shlibdeps; the runtime
# package gets a shlibs file and the ldconfig trigger.  scripts/deb_test.sh
# builds, installs, uses and removes them (CI).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libsegops)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "libsegops")
set(CPACK_PACKAGE_CONTACT "libsegops maintainers <libsegops@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "C client for the SegOps event-ingestion API")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL runtime dev tools)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

set(_segops_runtime_pkg libsegops${SEGOPS_SOVERSION})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${_segops_runtime_pkg})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON) # only the runtime package has a soname
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "C client for the SegOps event-ingestion API - shared library
 libsegops sends user events (track) and traits (identify) to the SegOps
 ingestion API in batches, from a sender thread driven by io_uring, with
 TLS through BearSSL.  segops_track() never blocks, allocates or makes a
 system call.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libsegops-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "${_segops_runtime_pkg} (= ${PROJECT_VERSION}), liburing-dev, libck-dev, libbearssl-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "C client for the SegOps event-ingestion API - development files
 The C header <segops.h>, the C++17 header <segops.hpp>, the static
 library, pkg-config file (segops) and CMake package (find_package(segops))
 of libsegops.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME segops-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "${_segops_runtime_pkg} (= ${PROJECT_VERSION})")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
  "C client for the SegOps event-ingestion API - command-line tools
 segops-send sends events from the shell or a JSON Lines file;
 segops-sink is a local SegOps ingestion server for tests and demos.")

include(CPack)

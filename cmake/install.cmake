# SPDX-License-Identifier: MIT
# Install rules and packaging: the headers, both libraries (shared with a
# versioned soname, static), segops-sink and segops-send, a pkg-config
# file (segops.pc) and a CMake package (find_package(segops)) exporting
# segops::segops (shared) and segops::segops_static; LICENSE and
# CHANGELOG.md.  Also: the optional `doc` target (Doxygen).
#
# Every file belongs to one install component, which is one Debian package
# (cmake/package.cmake):
#   runtime  the shared library (libsegops.so.SOVERSION*), LICENSE,
#            CHANGELOG.md                                 -> libsegopsSOVERSION
#   dev      headers, libsegops.so link, libsegops.a, segops.pc, the CMake
#            package                                      -> libsegops-dev
#   tools    segops-send, segops-sink                     -> segops-tools
# A plain `cmake --install` installs all three.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Names inside the namespace, and the same names for projects that add
# this tree with add_subdirectory().
set_target_properties(segops_shared PROPERTIES EXPORT_NAME segops)
set_target_properties(segops_static PROPERTIES EXPORT_NAME segops_static)
if(NOT TARGET segops::segops)
  add_library(segops::segops ALIAS segops_shared)
  add_library(segops::segops_static ALIAS segops_static)
endif()

# The static library's link dependencies are build-tree imported targets
# (PkgConfig::URING) and absolute paths (CK_LIBRARY, ...); an installed
# package must carry neither.  The build tree keeps them; the install tree
# names one package-local target per library, segops::dep_<name>, which
# segopsConfig.cmake defines with find_library(<name>), and segops.pc lists
# the same libraries for `pkg-config --static`.
set(SEGOPS_STATIC_LIBS)    # library names: uring ck ...
function(_segops_dep_names item out)
  set(names)
  if(item MATCHES "^\\$<" OR item STREQUAL "Threads::Threads")
    # generator expressions and Threads are passed through
  elseif(TARGET ${item})
    get_target_property(_sub ${item} INTERFACE_LINK_LIBRARIES)
    foreach(_i IN LISTS _sub)
      _segops_dep_names("${_i}" _n)
      list(APPEND names ${_n})
    endforeach()
  elseif(IS_ABSOLUTE "${item}")
    get_filename_component(_f "${item}" NAME)
    string(REGEX REPLACE "^lib" "" _f "${_f}")
    string(REGEX REPLACE "\\.(so|a)(\\..*)?$" "" _f "${_f}")
    list(APPEND names ${_f})
  elseif(item MATCHES "^-l(.+)$")
    list(APPEND names ${CMAKE_MATCH_1})
  elseif(item MATCHES "^[A-Za-z0-9_+.-]+$")
    list(APPEND names ${item})
  endif()
  set(${out} ${names} PARENT_SCOPE)
endfunction()
get_target_property(_segops_deps segops_static INTERFACE_LINK_LIBRARIES)
set(_segops_iface)
foreach(_d IN LISTS _segops_deps)
  if(_d MATCHES "^\\$<" OR _d STREQUAL "Threads::Threads")
    list(APPEND _segops_iface "${_d}")
    continue()
  endif()
  _segops_dep_names("${_d}" _names)
  list(APPEND _segops_iface "$<BUILD_INTERFACE:${_d}>")
  foreach(_n IN LISTS _names)
    if(NOT _n IN_LIST SEGOPS_STATIC_LIBS AND NOT _n MATCHES "^(pthread|c)$")
      list(APPEND SEGOPS_STATIC_LIBS ${_n})
      list(APPEND _segops_iface "$<INSTALL_INTERFACE:segops::dep_${_n}>")
    endif()
  endforeach()
endforeach()
set_property(TARGET segops_static PROPERTY INTERFACE_LINK_LIBRARIES "${_segops_iface}")

# segops.pc: liburing through its own .pc file, the rest as -l flags.
set(_segops_pc_requires)
set(_segops_pc_libs)
foreach(_n IN LISTS SEGOPS_STATIC_LIBS)
  if(_n STREQUAL "uring")
    list(APPEND _segops_pc_requires liburing)
  else()
    list(APPEND _segops_pc_libs -l${_n})
  endif()
endforeach()
list(APPEND _segops_pc_libs -pthread)
string(REPLACE ";" " " SEGOPS_STATIC_LIBS_TEXT "${SEGOPS_STATIC_LIBS}")
string(REPLACE ";" " " SEGOPS_PC_REQUIRES_PRIVATE "${_segops_pc_requires}")
string(REPLACE ";" " " SEGOPS_PC_LIBS_PRIVATE "${_segops_pc_libs}")

install(FILES include/segops.h include/segops.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev)
install(TARGETS segops_static segops_shared EXPORT segopsTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS segops-sink segops-chaos RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
if(TARGET segops-send)
  install(TARGETS segops-send RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
endif()
install(FILES LICENSE CHANGELOG.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)

# CMake package: relocatable, found by find_package(segops [0.N]).
set(SEGOPS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/segops)
install(EXPORT segopsTargets NAMESPACE segops:: DESTINATION ${SEGOPS_CMAKE_DIR}
  FILE segopsTargets.cmake COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/segopsConfig.cmake.in
  ${PROJECT_BINARY_DIR}/segopsConfig.cmake INSTALL_DESTINATION ${SEGOPS_CMAKE_DIR})
# Compatible versions follow the soname: same 0.MINOR while the major is 0,
# same major from 1.0 on.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_segops_compat SameMinorVersion)
else()
  set(_segops_compat SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/segopsConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${_segops_compat})
install(FILES ${PROJECT_BINARY_DIR}/segopsConfig.cmake
  ${PROJECT_BINARY_DIR}/segopsConfigVersion.cmake DESTINATION ${SEGOPS_CMAKE_DIR} COMPONENT dev)

# pkg-config: written at install time, so that the paths in it are those
# of the prefix actually installed to (cmake --install --prefix P).
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_segops_pc_libdir "${CMAKE_INSTALL_LIBDIR}")
else()
  set(_segops_pc_libdir "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(_segops_pc_includedir "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(_segops_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
install(CODE "
  set(SEGOPS_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(SEGOPS_PC_LIBDIR [[${_segops_pc_libdir}]])
  set(SEGOPS_PC_INCLUDEDIR [[${_segops_pc_includedir}]])
  set(SEGOPS_PC_VERSION [[${PROJECT_VERSION}]])
  set(SEGOPS_PC_LIBS_PRIVATE [[${SEGOPS_PC_LIBS_PRIVATE}]])
  set(SEGOPS_PC_REQUIRES_PRIVATE [[${SEGOPS_PC_REQUIRES_PRIVATE}]])
  configure_file([[${PROJECT_SOURCE_DIR}/cmake/segops.pc.in]]
                 [[${PROJECT_BINARY_DIR}/segops.pc]] @ONLY)
" COMPONENT dev)
install(FILES ${PROJECT_BINARY_DIR}/segops.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT dev)

# API documentation: `cmake --build B --target doc` writes B/doc/html.
find_program(SEGOPS_DOXYGEN doxygen)
if(SEGOPS_DOXYGEN)
  add_custom_target(doc
    COMMAND sh -c "{ cat Doxyfile; echo 'OUTPUT_DIRECTORY = ${PROJECT_BINARY_DIR}/doc'; echo 'PROJECT_NUMBER = ${PROJECT_VERSION}'; } | '${SEGOPS_DOXYGEN}' -"
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "Doxygen: ${PROJECT_BINARY_DIR}/doc/html/index.html"
    VERBATIM)
endif()

# Install rules: the header, both libraries, segops-sink.
include(GNUInstallDirs)
install(FILES include/segops.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS segops_static segops_shared segops-sink
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})


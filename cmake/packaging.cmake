# Installation layout and the Debian package (included by the root
# CMakeLists.txt after every target exists).
#
#   bin/sil-server, bin/sil-lab, bin/sil-model
#   share/sil/plot.py             sil-lab finds it at <exe dir>/../share/sil/
#   share/sil/sil.conf.example    every configuration key with its default
#   share/doc/sil/                README, design, model and weights format
#
#   cmake --install build --prefix /usr/local          (or DESTDIR=... for staging)
#   cmake --preset portable && cmake --build --preset portable
#   cpack --config build-portable/CPackConfig.cmake    -> sil_<version>_<arch>.deb
#
# Build packages from the portable preset: the default build uses
# -march=native, which other machines' CPUs may not run.
set(CMAKE_INSTALL_DOCDIR "share/doc/sil")
include(GNUInstallDirs)

# Two components: `runtime` (programs, plot.py, the example configuration)
# and `doc`. The container image installs only `runtime` (its build context
# leaves docs/ out); the .deb holds both.
install(TARGETS sil-server sil-lab sil-model RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT runtime)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/experiments/plot.py
        DESTINATION ${CMAKE_INSTALL_DATADIR}/sil COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/config/sil.conf.example
        DESTINATION ${CMAKE_INSTALL_DATADIR}/sil COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/design.md
              ${PROJECT_SOURCE_DIR}/docs/model.md ${PROJECT_SOURCE_DIR}/docs/weights-format.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT doc)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "sil")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Stateful Inference Lab: an inference service that reuses computation within an error budget")
set(CPACK_PACKAGE_CONTACT "Stateful Inference Lab maintainers <sil@localhost>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
# The shared libraries' packages come from dpkg-shlibdeps (libcaf-core0.17,
# libcaf-io0.17, libprometheus-cpp-core1.0, libspdlog1.10, libfmt9, libc6,
# libstdc++6, libgcc-s1, with the versions their symbols need); the ctest
# test package_depends_on_every_runtime_library checks the result.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# sil-lab's plots (share/sil/plot.py).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3, python3-matplotlib")
include(CPack)

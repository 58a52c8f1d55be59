# FindAsio: standalone Asio (header-only; Debian libasio-dev ships no CMake
# package). Set ASIO_INCLUDE_DIR (or ASIO_ROOT) to use a copy elsewhere.
# Provides the imported target Asio::asio.
find_path(ASIO_INCLUDE_DIR NAMES asio.hpp
  HINTS ${ASIO_ROOT} ENV ASIO_ROOT PATH_SUFFIXES include asio/include)
if(ASIO_INCLUDE_DIR AND EXISTS "${ASIO_INCLUDE_DIR}/asio/version.hpp")
  file(STRINGS "${ASIO_INCLUDE_DIR}/asio/version.hpp" _asio_ver REGEX "^#define ASIO_VERSION [0-9]+")
  string(REGEX REPLACE ".*ASIO_VERSION ([0-9]+).*" "\\1" _asio_ver "${_asio_ver}")
  math(EXPR _asio_major "${_asio_ver} / 100000")
  math(EXPR _asio_minor "${_asio_ver} / 100 % 1000")
  math(EXPR _asio_patch "${_asio_ver} % 100")
  set(Asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Asio REQUIRED_VARS ASIO_INCLUDE_DIR VERSION_VAR Asio_VERSION
  REASON_FAILURE_MESSAGE "install standalone Asio (apt-get install libasio-dev) or set ASIO_INCLUDE_DIR")
if(Asio_FOUND AND NOT TARGET Asio::asio)
  add_library(Asio::asio INTERFACE IMPORTED)
  set_target_properties(Asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${ASIO_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;ASIO_NO_DEPRECATED")
  find_package(Threads QUIET)
  if(TARGET Threads::Threads)
    set_property(TARGET Asio::asio APPEND PROPERTY INTERFACE_LINK_LIBRARIES Threads::Threads)
  endif()
endif()
mark_as_advanced(ASIO_INCLUDE_DIR)

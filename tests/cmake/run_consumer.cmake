# cmake -P script behind the CMake packaging tests (see CMakeLists.txt beside it).
# -DMODE=fetch_content|install|find_package|pkg_config  -DSOURCE_DIR=<duplex tree>
# -DTEST_DIR=<tests/cmake> -DWORK_DIR=<scratch under the build tree> -DGENERATOR= -DCXX=
# -DEXPECT_TLS=ON|OFF -DEXPECT_DEFLATE=ON|OFF [-DPKG_CONFIG=<pkg-config>]
cmake_minimum_required(VERSION 3.16)

foreach(v MODE SOURCE_DIR TEST_DIR WORK_DIR GENERATOR CXX)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${v}=... is required")
  endif()
endforeach()
set(PREFIX "${WORK_DIR}/prefix")
if(EXPECT_TLS)
  set(_tls 1)
else()
  set(_tls 0)
endif()
if(EXPECT_DEFLATE)
  set(_deflate 1)
else()
  set(_deflate 0)
endif()

# run(<what> <command...>): runs the command, echoes it, fails the test with its output.
function(run what)
  message(STATUS "[${MODE}] ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] ${what} FAILED (exit ${rc}):\n${out}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

# build_and_run(<project dir> <build dir> <cmake -D args...>)
function(build_and_run src bin)
  file(REMOVE_RECURSE "${bin}")
  run("configure" ${CMAKE_COMMAND} -S "${src}" -B "${bin}" -G "${GENERATOR}"
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release ${ARGN})
  run("build" ${CMAKE_COMMAND} --build "${bin}")
  run("run consumer" "${bin}/consumer")
  message(STATUS "[${MODE}] ${last_output}")
endfunction()

if(MODE STREQUAL "fetch_content")
  build_and_run("${TEST_DIR}/fetch_content" "${WORK_DIR}/fetch_content"
    -DDUPLEX_SOURCE_DIR=${SOURCE_DIR} -DDUPLEX_EXPECT_TLS=${_tls} -DDUPLEX_EXPECT_DEFLATE=${_deflate})

elseif(MODE STREQUAL "install")
  set(bin "${WORK_DIR}/install-build")
  file(REMOVE_RECURSE "${bin}" "${PREFIX}")
  run("configure duplex" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${bin}" -G "${GENERATOR}"
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_INSTALL_PREFIX=${PREFIX}
      -DDUPLEX_BUILD_TESTS=OFF -DDUPLEX_BUILD_EXAMPLES=OFF -DDUPLEX_BUILD_BENCHMARKS=OFF
      -DDUPLEX_BUILD_FUZZERS=OFF -DDUPLEX_INSTALL=ON)
  run("build duplex" ${CMAKE_COMMAND} --build "${bin}")
  run("install duplex" ${CMAKE_COMMAND} --install "${bin}")
  foreach(f include/duplex/core/error.hpp share/duplex/cmake/duplexConfig.cmake
            share/duplex/cmake/duplexConfigVersion.cmake share/duplex/cmake/duplexTargets.cmake
            share/duplex/cmake/FindAsio.cmake share/pkgconfig/duplex.pc)
    if(NOT EXISTS "${PREFIX}/${f}")
      message(FATAL_ERROR "[install] ${PREFIX}/${f} was not installed")
    endif()
  endforeach()
  # Nothing installed may point back into the source or build tree.
  file(GLOB_RECURSE _meta "${PREFIX}/share/*")
  foreach(f ${_meta})
    file(READ "${f}" _text)
    string(REPLACE "${PREFIX}" "<prefix>" _text "${_text}")  # the prefix may be inside them
    foreach(tree "${SOURCE_DIR}" "${bin}")
      string(FIND "${_text}" "${tree}" _at)
      if(NOT _at EQUAL -1)
        message(FATAL_ERROR "[install] ${f} refers to ${tree}")
      endif()
    endforeach()
  endforeach()
  message(STATUS "[install] duplex installed into ${PREFIX}")

elseif(MODE STREQUAL "find_package")
  if(NOT EXISTS "${PREFIX}/share/duplex/cmake/duplexConfig.cmake")
    message(FATAL_ERROR "[find_package] no duplex installed in ${PREFIX} (cmake_install test)")
  endif()
  build_and_run("${TEST_DIR}/find_package" "${WORK_DIR}/find_package" -DCMAKE_PREFIX_PATH=${PREFIX})
  # A component duplex does not have must make find_package(... REQUIRED) fail.
  set(bin "${WORK_DIR}/find_package_missing_component")
  file(REMOVE_RECURSE "${bin}")
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${TEST_DIR}/find_package" -B "${bin}" -G "${GENERATOR}"
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${PREFIX} -DDUPLEX_TEST_EXTRA_COMPONENT=no_such_component
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "[find_package] COMPONENTS no_such_component was accepted:\n${out}")
  endif()
  message(STATUS "[find_package] a missing component is refused, as it should be")

elseif(MODE STREQUAL "pkg_config")
  if(NOT PKG_CONFIG)
    message(FATAL_ERROR "[pkg_config] -DPKG_CONFIG=<pkg-config> is required")
  endif()
  if(NOT EXISTS "${PREFIX}/share/pkgconfig/duplex.pc")
    message(FATAL_ERROR "[pkg_config] no duplex.pc in ${PREFIX} (cmake_install test)")
  endif()
  set(ENV{PKG_CONFIG_PATH} "${PREFIX}/share/pkgconfig")
  run("validate duplex.pc" ${PKG_CONFIG} --validate duplex)
  run("pkg-config --modversion" ${PKG_CONFIG} --modversion duplex)
  string(STRIP "${last_output}" _version)
  message(STATUS "[pkg_config] duplex ${_version}")
  run("pkg-config --cflags --libs" ${PKG_CONFIG} --cflags --libs duplex)
  string(STRIP "${last_output}" _flags)
  message(STATUS "[pkg_config] flags: ${_flags}")
  separate_arguments(_flags UNIX_COMMAND "${_flags}")
  set(bin "${WORK_DIR}/pkg_config")
  file(REMOVE_RECURSE "${bin}")
  file(MAKE_DIRECTORY "${bin}")
  run("compile" ${CXX} -std=c++17 -O1 -DDUPLEX_EXPECT_TLS=${_tls} -DDUPLEX_EXPECT_DEFLATE=${_deflate}
      "${TEST_DIR}/consumer.cpp" -o "${bin}/consumer" ${_flags})
  run("run consumer" "${bin}/consumer")
  message(STATUS "[pkg_config] ${last_output}")

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

# cmake -P script behind the CMake packaging tests (see CMakeLists.txt beside it).
# -DMODE=fetch_content|install|find_package|find_package_components|pkg_config
# -DSOURCE_DIR=<duplex tree>
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

# build_and_run(<project dir> <build dir> <cmake -D args...>); sets configure_output.
function(build_and_run src bin)
  file(REMOVE_RECURSE "${bin}")
  run("configure" ${CMAKE_COMMAND} -S "${src}" -B "${bin}" -G "${GENERATOR}"
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release ${ARGN})
  set(configure_output "${last_output}" PARENT_SCOPE)
  run("build" ${CMAKE_COMMAND} --build "${bin}")
  run("run consumer" "${bin}/consumer")
  message(STATUS "[${MODE}] ${last_output}")
endfunction()

# install_duplex(<build dir> <prefix> <extra cmake -D args...>): configures this duplex tree
# with nothing but the install target and installs it into <prefix>.
function(install_duplex bin prefix)
  file(REMOVE_RECURSE "${bin}" "${prefix}")
  run("configure duplex" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${bin}" -G "${GENERATOR}"
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_INSTALL_PREFIX=${prefix}
      -DDUPLEX_BUILD_TESTS=OFF -DDUPLEX_BUILD_EXAMPLES=OFF -DDUPLEX_BUILD_BENCHMARKS=OFF
      -DDUPLEX_BUILD_FUZZERS=OFF -DDUPLEX_INSTALL=ON ${ARGN})
  set(last_output "${last_output}" PARENT_SCOPE)
  run("build duplex" ${CMAKE_COMMAND} --build "${bin}")
  run("install duplex" ${CMAKE_COMMAND} --install "${bin}")
endfunction()

# configure_consumer(<build dir> <prefix> <cmake -D args...>): configures the find_package
# consumer against <prefix>; sets consumer_rc and consumer_output (with the work and source
# directories replaced by <work> and <source>, so that only what CMake and duplex print is
# left to look for component names in).
function(configure_consumer bin prefix)
  file(REMOVE_RECURSE "${bin}")
  message(STATUS "[${MODE}] configure consumer: ${ARGN}")
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${TEST_DIR}/find_package" -B "${bin}" -G "${GENERATOR}"
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix} ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(REPLACE "${WORK_DIR}" "<work>" out "${out}")
  string(REPLACE "${SOURCE_DIR}" "<source>" out "${out}")
  set(consumer_rc "${rc}" PARENT_SCOPE)
  set(consumer_output "${out}" PARENT_SCOPE)
endfunction()

# expect_named(<what> <text> <name>...): fails unless each name appears in text as a word.
function(expect_named what text)
  foreach(name ${ARGN})
    if(NOT text MATCHES "(^|[^A-Za-z0-9_])${name}([^A-Za-z0-9_]|$)")
      message(FATAL_ERROR "[${MODE}] ${what}: the output does not name '${name}':\n${text}")
    endif()
  endforeach()
endfunction()

# consumer_sees(<text> <TLS 0|1> <deflate 0|1>): the find_package consumer's own report of
# duplex_TLS_FOUND / duplex_deflate_FOUND.
function(consumer_sees text tls deflate)
  set(want "consumer: duplex_TLS_FOUND=${tls} duplex_deflate_FOUND=${deflate}")
  string(FIND "${text}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "[${MODE}] expected '${want}' from the consumer's configure:\n${text}")
  endif()
endfunction()

if(MODE STREQUAL "fetch_content")
  build_and_run("${TEST_DIR}/fetch_content" "${WORK_DIR}/fetch_content"
    -DDUPLEX_SOURCE_DIR=${SOURCE_DIR} -DDUPLEX_EXPECT_TLS=${_tls} -DDUPLEX_EXPECT_DEFLATE=${_deflate})

elseif(MODE STREQUAL "install")
  set(bin "${WORK_DIR}/install-build")
  install_duplex("${bin}" "${PREFIX}")
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
  # COMPONENTS TLS deflate (the consumer's default), both found.
  build_and_run("${TEST_DIR}/find_package" "${WORK_DIR}/find_package" -DCMAKE_PREFIX_PATH=${PREFIX})
  consumer_sees("${configure_output}" 1 1)
  # A component duplex does not have must make find_package(... REQUIRED) fail, by name.
  configure_consumer("${WORK_DIR}/find_package_missing_component" "${PREFIX}"
    -DDUPLEX_TEST_COMPONENTS=TLS,deflate,no_such_component)
  if(consumer_rc EQUAL 0)
    message(FATAL_ERROR "[find_package] COMPONENTS no_such_component was accepted:\n${consumer_output}")
  endif()
  expect_named("COMPONENTS no_such_component" "${consumer_output}" no_such_component)
  message(STATUS "[find_package] a missing component is refused by name, as it should be")

elseif(MODE STREQUAL "find_package_components")
  # duplex installed without its optional components (-DDUPLEX_WITH_TLS=OFF
  # -DDUPLEX_WITH_DEFLATE=OFF) into a prefix of its own: asked for as COMPONENTS each must
  # fail the configure and be named in its output; asked for as OPTIONAL_COMPONENTS the
  # configure goes on, names each as missing, and the consumer builds and runs without them.
  set(_prefix "${WORK_DIR}/prefix-minimal")
  install_duplex("${WORK_DIR}/install-minimal-build" "${_prefix}"
    -DDUPLEX_WITH_TLS=OFF -DDUPLEX_WITH_DEFLATE=OFF)
  if(NOT last_output MATCHES "TLS=OFF deflate=OFF")
    message(FATAL_ERROR "[${MODE}] duplex did not configure without TLS and deflate:\n${last_output}")
  endif()
  set(_n 0)
  foreach(_c TLS deflate)
    math(EXPR _n "${_n} + 1")
    configure_consumer("${WORK_DIR}/components-required-${_n}" "${_prefix}" -DDUPLEX_TEST_COMPONENTS=${_c})
    if(consumer_rc EQUAL 0)
      message(FATAL_ERROR "[${MODE}] COMPONENTS ${_c} accepted from an install without it:\n${consumer_output}")
    endif()
    # Only what CMake and duplexConfig.cmake print: the consumer says nothing before
    # find_package, and the paths (which might contain the name) were replaced.
    expect_named("COMPONENTS ${_c} (missing)" "${consumer_output}" ${_c})
    message(STATUS "[${MODE}] COMPONENTS ${_c}: refused, naming ${_c}")
  endforeach()

  set(bin "${WORK_DIR}/components-optional")
  configure_consumer("${bin}" "${_prefix}" -DDUPLEX_TEST_COMPONENTS= -DDUPLEX_TEST_OPTIONAL_COMPONENTS=TLS,deflate)
  if(NOT consumer_rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] OPTIONAL_COMPONENTS TLS deflate refused:\n${consumer_output}")
  endif()
  consumer_sees("${consumer_output}" 0 0)
  string(REGEX REPLACE "-- consumer: [^\n]*" "" _duplex_said "${consumer_output}")
  expect_named("OPTIONAL_COMPONENTS TLS deflate (missing)" "${_duplex_said}" TLS deflate)
  message(STATUS "[${MODE}] OPTIONAL_COMPONENTS TLS deflate: accepted, each reported missing by name")
  run("build" ${CMAKE_COMMAND} --build "${bin}")
  run("run consumer" "${bin}/consumer")
  message(STATUS "[${MODE}] ${last_output}")

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

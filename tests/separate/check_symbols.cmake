# Checks that separate compilation really moves the code out of the user's file:
# the object compiled with DUPLEX_SEPARATE_COMPILATION must define no member function
# of basic_connection / basic_server / basic_protocol (it only references them), while
# the same file compiled without the macro defines many (so the check can fail).
#   cmake -DNM=nm -DSEPARATE=<main.o> -DCONTROL=<main.o without the macro> -P check_symbols.cmake
function(count_members object out_defined out_undefined)
  execute_process(COMMAND ${NM} -C ${object} OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} -C ${object} failed")
  endif()
  string(REPLACE "\n" ";" lines "${symbols}")
  set(defined 0)
  set(undefined 0)
  foreach(line IN LISTS lines)
    # Implicit destructors are emitted wherever they are used; they are not counted, nor
    # are std functions whose demangled name starts with a duplex return type
    # ("duplex::basic_connection<...>& std::forward<...>(...)").
    if(line MATCHES "^[0-9a-f]+ [TWtw] duplex::basic_(connection|server|protocol)<"
       AND NOT line MATCHES ">::~basic_" AND NOT line MATCHES "^[0-9a-f]+ [TWtw] duplex::basic_[a-z]+<[^ ]*( [^ ]*)?>&? std::")
      math(EXPR defined "${defined} + 1")
      if(defined LESS 6)
        message(STATUS "  defined: ${line}")
      endif()
    elseif(line MATCHES "^ +U duplex::basic_(connection|server|protocol)<")
      math(EXPR undefined "${undefined} + 1")
    endif()
  endforeach()
  set(${out_defined} ${defined} PARENT_SCOPE)
  set(${out_undefined} ${undefined} PARENT_SCOPE)
endfunction()

count_members(${SEPARATE} sep_defined sep_undefined)
message(STATUS "separate: ${sep_defined} member functions defined, ${sep_undefined} referenced")
count_members(${CONTROL} ctl_defined ctl_undefined)
message(STATUS "header-only control: ${ctl_defined} member functions defined, ${ctl_undefined} referenced")

if(NOT sep_defined EQUAL 0)
  message(FATAL_ERROR "DUPLEX_SEPARATE_COMPILATION: the user's file still compiles ${sep_defined} member functions")
endif()
if(sep_undefined EQUAL 0)
  message(FATAL_ERROR "the user's file references no duplex member function: the check proves nothing")
endif()
if(ctl_defined EQUAL 0)
  message(FATAL_ERROR "the header-only control defines no member function: the check proves nothing")
endif()

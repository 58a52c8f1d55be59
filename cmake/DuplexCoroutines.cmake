# Sets DUPLEX_CXX20_COROUTINES: the compiler has C++20 coroutines that Asio can use
# (needed by duplex/coro.hpp). The result is cached, so including this again is free.
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-std=c++20")
set(CMAKE_REQUIRED_DEFINITIONS -DASIO_STANDALONE)
set(_duplex_asio_inc "")
if(TARGET Asio::asio)
  get_target_property(_duplex_asio_inc Asio::asio INTERFACE_INCLUDE_DIRECTORIES)
endif()
set(CMAKE_REQUIRED_INCLUDES ${_duplex_asio_inc})
check_cxx_source_compiles([=[
#include <asio/detail/config.hpp>
#if !defined(__cpp_impl_coroutine) || !defined(ASIO_HAS_CO_AWAIT)
#error no coroutines
#endif
int main() {}
]=] DUPLEX_CXX20_COROUTINES)
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_DEFINITIONS)
unset(CMAKE_REQUIRED_INCLUDES)

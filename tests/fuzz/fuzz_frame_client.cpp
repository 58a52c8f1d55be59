// libFuzzer target: client_frame_parser (frames from a server, unmasked).
// Same harness as fuzz_frame_server.cpp with the other role.
#define DUPLEX_FUZZ_ROLE duplex::role::client
#include "fuzz_frame_server.cpp"

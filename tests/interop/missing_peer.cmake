# Stands in for an interop test whose peer was not found at configure time, so the test
# fails (never passes or skips) and says what to install.
#   cmake -DPEER_MESSAGE=... -P missing_peer.cmake
message(FATAL_ERROR "interop peer missing: ${PEER_MESSAGE}")

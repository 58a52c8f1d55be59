// Everything most programs need: the server, the client, broadcast hubs and
// the protocol core. TLS comes with the client when duplex was built with
// OpenSSL (DUPLEX_HAS_TLS); permessage-deflate with zlib (DUPLEX_HAS_DEFLATE).
#pragma once

#include "version.hpp"

#include "core/error.hpp"
#include "core/frame.hpp"
#include "core/handshake.hpp"
#include "core/utf8.hpp"

#include "connection/connection.hpp"
#include "connection/protocol.hpp"

#include "client.hpp"
#include "hub.hpp"
#include "server.hpp"
#include "url.hpp"


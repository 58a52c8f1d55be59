// Separate-compilation proof, file 3 of 3: the one file that compiles duplex.
#include <duplex/src.hpp>

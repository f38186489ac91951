/* Links the counting allocator into build/bench-micro: the Makefile builds
 * every bench/micro/ source into the binary but nothing from support/ (tests/
 * and bench/ share it; a second copy would define malloc twice). */
#include "support/alloc_count.c"

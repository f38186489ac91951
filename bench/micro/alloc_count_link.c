/* Links the counting allocator into build/bench-micro: the Makefile builds
 * every bench/micro/ source into the binary but nothing from tests/support/. */
#include "tests/support/alloc_count.c"

/* Boot probe: prints the guest TSC as early as a C program can read it, then exits.
 * Under `-icount shift=0` the TSC counts guest instructions since the machine's reset, so the
 * printed figure is "instructions from reset to this program's main()" (firmware + kernel + the
 * C library's start-up code, ~a few thousand instructions). Run in Pith and in the Linux guest. */
#include <stdio.h>
#include "tsc.h"

int main(void)
{
    uint64_t tsc = bench_rdtsc();
    printf("BENCH-BOOT tsc=%llu\n", (unsigned long long)tsc);
    return 0;
}

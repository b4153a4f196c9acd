/* /init of the Linux guest's initramfs. It prints the guest TSC at its first instructions (the
 * marker the host waits for: under -icount shift=0, instructions since the machine's reset),
 * then hands over to busybox's shell running /bench.sh with init's arguments (the words after
 * `--` on the kernel command line): the benchmark, then `poweroff -f`. */
#include <stdio.h>
#include <unistd.h>
#include "tsc.h"

#define MAX_ARGS 64

int main(int argc, char **argv)
{
    uint64_t tsc = bench_rdtsc();
    printf("BENCH-INIT tsc=%llu\n", (unsigned long long)tsc);
    fflush(stdout);

    char *shell_argv[MAX_ARGS] = {"/bin/sh", "/bench.sh"};
    int count = 2;
    for (int i = 1; i < argc && count < MAX_ARGS - 1; i++)
        shell_argv[count++] = argv[i];
    shell_argv[count] = NULL;
    execv("/bin/sh", shell_argv);
    perror("init: execv /bin/sh");
    return 1;
}

/* Writes to stdout and stderr in turns, with printf, fputs, write and writev. */
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    printf("out: printf %d\n", 1);
    fprintf(stderr, "err: fprintf %d\n", 2);
    fflush(stdout);
    write(1, "out: write\n", 11);
    write(2, "err: write\n", 11);
    struct iovec parts[3] = {{"out: ", 5}, {"writev", 6}, {"\n", 1}};
    writev(1, parts, 3);
    return 0;
}

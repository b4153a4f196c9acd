/* Writes through a NULL pointer: Linux kills it with SIGSEGV (status 139 in a shell). */
#include <stdio.h>

int main(void) {
    printf("about to write through NULL\n");
    fflush(stdout);
    *(volatile int *)0 = 42;
    printf("still alive?\n");
    return 0;
}

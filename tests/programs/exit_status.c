/* Exits with the status named by argv[1], through the path named by argv[2]:
 * "return" from main, "exit" (atexit handlers, stdio flush), or "_exit" (the raw syscall). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void goodbye(void) { printf("atexit ran\n"); }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: exit_status STATUS return|exit|_exit\n");
        return 2;
    }
    int status = atoi(argv[1]);
    atexit(goodbye);
    printf("exiting with %d via %s\n", status, argv[2]);
    if (strcmp(argv[2], "exit") == 0) exit(status);
    if (strcmp(argv[2], "_exit") == 0) { fflush(stdout); _exit(status); }
    return status;
}

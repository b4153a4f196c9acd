/* What Ctrl-C at `pith run` does to a program: argv[1] says how it takes SIGTERM.
 *   handle:  a handler sets a flag; the program cleans up and exits 0
 *   default: the default action ends it (status 143)
 *   ignore:  SIG_IGN; it never exits by itself, so pith must stop the VM */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t asked_to_stop;
static void on_term(int signal) { (void)signal; asked_to_stop = 1; }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "handle";
    if (strcmp(mode, "handle") == 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_term;
        sigaction(SIGTERM, &action, 0);
    } else if (strcmp(mode, "ignore") == 0) {
        signal(SIGTERM, SIG_IGN);
    }
    printf("ready\n");
    fflush(stdout);
    while (!asked_to_stop) pause();
    printf("got SIGTERM, cleaning up\n");
    return 0;
}

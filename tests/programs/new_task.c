/* Asks for a new process (argument "fork") or thread ("thread"). Under Pith a new process is
 * refused for now, with EAGAIN (Linux's answer when it has no room for one), and the program
 * goes on; a thread is made. It prints what it got and exits 0. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *thread_main(void *argument) { return argument; }

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        if (pid > 0) waitpid(pid, NULL, 0);
        printf("fork: %s\n", pid > 0 ? "a child" : errno == EAGAIN ? "EAGAIN" : strerror(errno));
    } else {
        pthread_t thread;
        int error = pthread_create(&thread, NULL, thread_main, NULL);
        if (error == 0) pthread_join(thread, NULL);
        printf("pthread_create: %s\n", error == 0 ? "a thread" : "refused");
    }
    return 0;
}

/* fork, posix_spawn, system and execve under Pith, which runs one program: each fails at once
 * with the errno Linux gives when it is out of room for another process (EAGAIN; ENOMEM for
 * execve), and the program goes on. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv_main) {
    (void)argc;
    pid_t child = fork();
    if (child == 0) _exit(0);
    printf("fork: %d, %s\n", child, strerror(errno));
    pid_t spawned;
    char *argv[] = {"/bin/true", NULL};
    int error = posix_spawn(&spawned, "/bin/true", NULL, NULL, argv, environ);
    printf("posix_spawn: %s\n", strerror(error));
    errno = 0;
    int status = system("true");
    printf("system: the shell could not run (status %d)\n", status);
    /* The program itself: a file that is there. */
    execve(argv_main[0], argv, environ);
    printf("execve: %s\n", strerror(errno));
    execve("/no/such/program", argv, environ);
    printf("execve of nothing: %s\n", strerror(errno));
    printf("still running\n");
    return 0;
}

/* Prints argc, every argv entry and every environment entry, each in brackets, so that
 * spaces and empty strings are visible. Its output in Pith must equal its output on Linux. */
#include <stdio.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=[%s]\n", i, argv[i]);
    for (char **e = environ; *e; e++) printf("env=[%s]\n", *e);
    return 0;
}

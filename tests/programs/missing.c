/* Looks for files that are not there (and one that is), for `pith run --missing-files`. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    struct stat info;
    open("/etc/app.conf", O_RDONLY);
    open("/etc/app.conf", O_RDONLY); /* reported once */
    chdir("/tmp");
    stat("cache/index", &info);
    access("/opt/plugin.so", F_OK);
    int present = open("/proc/self/status", O_RDONLY);
    printf("done: %s\n", present >= 0 ? "the present file opened" : "?");
    return 0;
}

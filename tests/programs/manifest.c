/* Run under a manifest (pith.toml): prints what the manifest set (argv, an environment
 * variable, the working directory, the files a glob put in /etc/app) and what a read-only `/`
 * does to writes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *outcome(int result) {
    if (result >= 0) return "ok";
    return errno == EROFS ? "EROFS" : strerror(errno);
}

int main(int argc, char **argv) {
    printf("argv:");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    const char *mode = getenv("MODE");
    printf("\nMODE=%s\n", mode ? mode : "(unset)");
    char cwd[256];
    printf("cwd: %s\n", getcwd(cwd, sizeof cwd));

    /* The glob's matches, in name order. */
    struct dirent **names;
    int count = scandir("/etc/app", &names, 0, alphasort);
    printf("/etc/app:");
    for (int i = 0; i < count; i++)
        if (names[i]->d_name[0] != '.') printf(" %s", names[i]->d_name);
    printf("\n");

    char text[64] = "";
    int readme = open("/srv/README", O_RDONLY);
    ssize_t got = read(readme, text, sizeof text - 1);
    printf("/srv/README: %s\n", got > 0 ? text : "(missing)");

    printf("create in /: %s\n", outcome(open("/new-file", O_WRONLY | O_CREAT, 0644)));
    printf("write a file of /: %s\n", outcome(open("/srv/README", O_WRONLY)));
    printf("mkdir in /: %s\n", outcome(mkdir("/new-dir", 0755)));
    printf("access(W_OK) /srv: %s\n", outcome(access("/srv", W_OK)));
    printf("create in /tmp: %s\n", outcome(open("/tmp/scratch", O_WRONLY | O_CREAT, 0644)));

    /* The options of `/` in /proc/mounts. */
    FILE *mounts = fopen("/proc/mounts", "r");
    char line[256];
    while (mounts && fgets(line, sizeof line, mounts)) {
        char device[64], path[64], kind[64], options[64];
        if (sscanf(line, "%63s %63s %63s %63s", device, path, kind, options) == 4 && strcmp(path, "/") == 0)
            printf("/ is %s %.2s\n", kind, options);
    }
    return 0;
}

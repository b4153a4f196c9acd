/* Prints what programs read of /proc and /sys to learn about their machine: the processor
 * count in /proc/cpuinfo, /proc/mounts' mount points, the hostname, the online CPUs, /proc/stat
 * and /proc/uptime's shapes, and where /proc/self/fd/N and /proc/self/cwd point. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void first_line(const char *path, char *out, size_t size) {
    FILE *file = fopen(path, "r");
    out[0] = 0;
    if (file) {
        if (!fgets(out, (int)size, file)) out[0] = 0;
        fclose(file);
    }
    out[strcspn(out, "\n")] = 0;
}

int main(void) {
    char line[512];
    int processors = 0, has_flags = 0;
    FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
    while (cpuinfo && fgets(line, sizeof line, cpuinfo)) {
        processors += strncmp(line, "processor", 9) == 0;
        has_flags |= strncmp(line, "flags", 5) == 0 && strstr(line, " sse2") != NULL;
    }
    printf("processors: %d, sse2 among the flags: %s\n", processors, has_flags ? "yes" : "no");
    FILE *mounts = fopen("/proc/mounts", "r");
    while (mounts && fgets(line, sizeof line, mounts)) {
        char device[64], point[256], type[64];
        if (sscanf(line, "%63s %255s %63s", device, point, type) == 3)
            printf("mount: %s %s\n", point, type);
    }
    first_line("/proc/sys/kernel/hostname", line, sizeof line);
    printf("hostname: %s\n", line);
    first_line("/sys/devices/system/cpu/online", line, sizeof line);
    printf("online: %s\n", line);
    first_line("/proc/stat", line, sizeof line);
    printf("stat starts with cpu: %s\n", strncmp(line, "cpu ", 4) == 0 ? "yes" : "no");
    double up = 0, idle = 0;
    FILE *uptime = fopen("/proc/uptime", "r");
    printf("uptime: %s\n", uptime && fscanf(uptime, "%lf %lf", &up, &idle) == 2 && up > 0 ? "yes" : "no");
    chdir("/tmp");
    int fd = open("marker", O_CREAT | O_WRONLY, 0644);
    char link[64] = "", cwd[64] = "";
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    readlink(path, link, sizeof link - 1);
    readlink("/proc/self/cwd", cwd, sizeof cwd - 1);
    printf("fd link: %s\ncwd link: %s\n", link, cwd);
    int pipes[2];
    pipe(pipes);
    snprintf(path, sizeof path, "/proc/self/fd/%d", pipes[0]);
    memset(link, 0, sizeof link);
    readlink(path, link, sizeof link - 1);
    printf("pipe link starts with pipe:[ %s\n", strncmp(link, "pipe:[", 6) == 0 ? "yes" : "no");
    return 0;
}

/* What /tmp is: a tmpfs of the size `pith run --tmp` gave, or (--tmp disk) a directory of
 * `/` that keeps what is left in it across boots of an image. Fills /tmp with up to argv[1]
 * KiB and reports where it stopped. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#define TMPFS_MAGIC 0x01021994

int main(int argc, char **argv) {
    long want_kib = argc > 1 ? atol(argv[1]) : 0;
    struct statfs info;
    if (statfs("/tmp", &info) != 0) {
        perror("statfs /tmp");
        return 1;
    }
    int tmpfs = info.f_type == TMPFS_MAGIC;
    printf("tmpfs: %s\n", tmpfs ? "yes" : "no");
    if (tmpfs) printf("size: %llu KiB\n", (unsigned long long)info.f_blocks * info.f_bsize / 1024);
    char mounts[8192] = {0};
    int fd = open("/proc/mounts", O_RDONLY);
    if (fd >= 0) {
        read(fd, mounts, sizeof mounts - 1);
        close(fd);
    }
    printf("mounted: %s\n", strstr(mounts, " /tmp ") ? "yes" : "no");
    static char chunk[64 << 10];
    memset(chunk, 'x', sizeof chunk);
    fd = open("/tmp/fill", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    long written = 0;
    int error = 0;
    while (written < want_kib << 10) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n < 0) {
            error = errno;
            break;
        }
        written += n;
        if (n < (ssize_t)sizeof chunk) break;
    }
    close(fd);
    unlink("/tmp/fill");
    if (error == ENOSPC)
        printf("fill: ENOSPC after %ld KiB\n", written >> 10);
    else
        printf("fill: %ld KiB\n", written >> 10);
    printf("kept: %s\n", access("/tmp/kept", F_OK) == 0 ? "yes" : "no");
    close(open("/tmp/kept", O_CREAT | O_WRONLY, 0644));
    return 0;
}

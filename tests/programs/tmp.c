/* What /tmp is: a tmpfs of the size `pith run --tmp` gave, or (--tmp disk) a directory of
 * `/` that keeps what is left in it across boots of an image. Fills /tmp with up to argv[1]
 * KiB and reports where it stopped; with argv[2] "inodes", fills it with empty files. */
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
    if (argc > 2 && strcmp(argv[2], "inodes") == 0) {
        /* tmpfs' inode limit: empty files until ENOSPC, as many as statfs says are free
         * (Linux: half the RAM's pages, whatever the size), then room again after one goes. */
        statfs("/tmp", &info);
        long free_files = (long)info.f_ffree, made = 0;
        char name[64];
        for (;;) {
            snprintf(name, sizeof name, "/tmp/i%ld", made);
            int file = open(name, O_CREAT | O_WRONLY, 0644);
            if (file < 0) {
                error = errno;
                break;
            }
            close(file);
            made++;
        }
        unlink("/tmp/i0");
        int again = open("/tmp/i0", O_CREAT | O_WRONLY, 0644);
        printf("inodes: %s after %s files, %s\n", error == ENOSPC ? "ENOSPC" : strerror(error),
               made == free_files ? "as many as statfs said" : "not as many as statfs said",
               again >= 0 ? "room after an unlink" : "no room after an unlink");
        if (made != free_files) printf("made %ld, f_ffree %ld\n", made, free_files);
        close(again);
        for (long i = 0; i < made; i++) {
            snprintf(name, sizeof name, "/tmp/i%ld", i);
            unlink(name);
        }
    }
    printf("kept: %s\n", access("/tmp/kept", F_OK) == 0 ? "yes" : "no");
    close(open("/tmp/kept", O_CREAT | O_WRONLY, 0644));
    return 0;
}

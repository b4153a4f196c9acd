/* File I/O in a directory (a Pith volume, or a host directory), timed with CLOCK_MONOTONIC:
 *  - sequential: write MIB MiB in 1 MiB writes, fsync, close; then read it all back;
 *  - random: 2,000 preads of 4 KiB at random 4 KiB-aligned offsets of that file;
 *  - small files: create, write 1 KiB, fsync and close FILES files.
 * Usage: files DIR [MIB] [FILES]  (defaults 64 and 200). Prints one line of key=value
 * figures; exit 1 if a read returned other bytes than were written. Removes what it made. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static unsigned char pattern(long offset) { return (unsigned char)(offset * 131 + (offset >> 12)); }

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: files DIR [MIB] [FILES]\n");
        return 2;
    }
    const char *dir = argv[1];
    long mib = argc > 2 ? strtol(argv[2], NULL, 10) : 64;
    long files = argc > 3 ? strtol(argv[3], NULL, 10) : 200;
    static unsigned char chunk[1 << 20], back[1 << 20];
    char path[512];
    long bad = 0;

    snprintf(path, sizeof path, "%s/bench-seq", dir);
    unsigned long long start = now_ns();
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    for (long m = 0; m < mib; m++) {
        for (long i = 0; i < (long)sizeof chunk; i++) chunk[i] = pattern(m * (long)sizeof chunk + i);
        if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) bad++;
    }
    if (fsync(fd) != 0) bad++;
    close(fd);
    unsigned long long write_ns = now_ns() - start;

    start = now_ns();
    fd = open(path, O_RDONLY);
    for (long m = 0; m < mib; m++) {
        if (read(fd, back, sizeof back) != (ssize_t)sizeof back) bad++;
        if (back[12345] != pattern(m * (long)sizeof back + 12345)) bad++;
    }
    unsigned long long read_ns = now_ns() - start;

    unsigned long long seed = 88172645463325252ull;
    start = now_ns();
    for (int i = 0; i < 2000; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        long offset = (long)(seed % (unsigned long long)(mib * 256)) * 4096;
        if (pread(fd, back, 4096, offset) != 4096 || back[7] != pattern(offset + 7)) bad++;
    }
    unsigned long long random_ns = now_ns() - start;
    close(fd);
    unlink(path);

    memset(chunk, 'x', 1024);
    start = now_ns();
    for (long i = 0; i < files; i++) {
        snprintf(path, sizeof path, "%s/small-%ld", dir, i);
        fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        if (fd < 0 || write(fd, chunk, 1024) != 1024 || fsync(fd) != 0) bad++;
        close(fd);
    }
    unsigned long long create_ns = now_ns() - start;
    for (long i = 0; i < files; i++) {
        snprintf(path, sizeof path, "%s/small-%ld", dir, i);
        unlink(path);
    }

    printf("BENCH-FILES mib=%ld files=%ld write_ns=%llu read_ns=%llu random_ns=%llu "
           "create_ns=%llu bad=%ld\n",
           mib, files, write_ns, read_ns, random_ns, create_ns, bad);
    return bad ? 1 : 0;
}

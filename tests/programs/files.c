/* Files, directories and paths as Linux programs use them, in a fresh directory under /tmp
 * (removed at the end): create, read, write, seek, pread/pwrite, O_APPEND from two fds,
 * truncate, stat, directories and their listing, rename (with renameat2's flags), hard and
 * symbolic links, an unlinked file still open, path errors, and the /dev nodes.
 * Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

/* struct statx (include/uapi/linux/stat.h), here because musl's headers do not have it. */
struct statx_time {
    long long tv_sec;
    unsigned tv_nsec;
    int reserved;
};
struct statx_result {
    unsigned stx_mask, stx_blksize;
    unsigned long long stx_attributes;
    unsigned stx_nlink, stx_uid, stx_gid;
    unsigned short stx_mode, spare0;
    unsigned long long stx_ino, stx_size, stx_blocks, stx_attributes_mask;
    struct statx_time stx_atime, stx_btime, stx_ctime, stx_mtime;
    unsigned char rest[256 - 0x80];
};

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static int names_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directory's entries, sorted, joined by spaces (directories list in any order). */
static void listing(const char *path, char *out, size_t size) {
    char *names[64];
    int count = 0;
    DIR *dir = opendir(path);
    struct dirent *entry;
    while (dir && (entry = readdir(dir)) && count < 64) names[count++] = strdup(entry->d_name);
    if (dir) closedir(dir);
    qsort(names, count, sizeof names[0], names_cmp);
    out[0] = 0;
    for (int i = 0; i < count; i++) {
        if (i) strncat(out, " ", size - strlen(out) - 1);
        strncat(out, names[i], size - strlen(out) - 1);
        free(names[i]);
    }
}

static long renameat2_raw(const char *from, const char *to, unsigned flags) {
    return syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
}

int main(void) {
    umask(022);
    char dir[] = "/tmp/pith-files-XXXXXX";
    check("mkdtemp", mkdtemp(dir) != NULL);
    check("chdir into it", chdir(dir) == 0);
    char cwd[256];
    check("getcwd names it", getcwd(cwd, sizeof cwd) && strcmp(cwd, dir) == 0);

    int fd = open("notes", O_CREAT | O_EXCL | O_WRONLY, 0666);
    check("open(O_CREAT | O_EXCL)", fd >= 0);
    for (int i = 0; i < 3; i++) write(fd, "hello\n", 6);
    check("close", close(fd) == 0);
    struct stat info;
    check("stat: a regular file of 18 bytes, mode 0644 (0666 less the umask)",
          stat("notes", &info) == 0 && S_ISREG(info.st_mode) && info.st_size == 18 &&
              (info.st_mode & 07777) == 0644 && info.st_nlink == 1);
    check("O_EXCL on an existing file: EEXIST",
          open("notes", O_CREAT | O_EXCL | O_WRONLY, 0644) == -1 && errno == EEXIST);

    char buffer[64] = {0};
    fd = open("notes", O_RDONLY);
    check("read it back", read(fd, buffer, sizeof buffer) == 18 &&
                              memcmp(buffer, "hello\nhello\nhello\n", 18) == 0);
    check("read at the end: 0", read(fd, buffer, sizeof buffer) == 0);
    check("lseek(SEEK_SET)", lseek(fd, 6, SEEK_SET) == 6);
    check("read from there", read(fd, buffer, 5) == 5 && memcmp(buffer, "hello", 5) == 0);
    check("lseek(SEEK_CUR) and (SEEK_END)", lseek(fd, -1, SEEK_CUR) == 10 &&
                                                lseek(fd, -2, SEEK_END) == 16);
    check("lseek before the start: EINVAL", lseek(fd, -100, SEEK_SET) == -1 && errno == EINVAL);
    check("write on a read-only fd: EBADF", write(fd, "x", 1) == -1 && errno == EBADF);
    int twin = dup(fd);
    lseek(fd, 12, SEEK_SET);
    check("a dup shares the position", lseek(twin, 0, SEEK_CUR) == 12);
    close(twin);
    check("pread does not move it", pread(fd, buffer, 4, 0) == 4 &&
                                        memcmp(buffer, "hell", 4) == 0 &&
                                        lseek(fd, 0, SEEK_CUR) == 12);
    close(fd);

    int first = open("log", O_CREAT | O_WRONLY | O_APPEND, 0644);
    int second = open("log", O_WRONLY | O_APPEND);
    write(first, "one ", 4);
    write(second, "two ", 4);
    write(first, "three", 5);
    close(first);
    close(second);
    fd = open("log", O_RDONLY);
    memset(buffer, 0, sizeof buffer);
    check("O_APPEND from two fds: each write at the end",
          read(fd, buffer, sizeof buffer) == 13 && strcmp(buffer, "one two three") == 0);
    close(fd);

    fd = open("sparse", O_CREAT | O_RDWR | O_TRUNC, 0600);
    check("pwrite past the end", pwrite(fd, "end", 3, 10000) == 3);
    fstat(fd, &info);
    check("the size follows it", info.st_size == 10003);
    memset(buffer, 1, sizeof buffer);
    check("the gap reads as zeros", pread(fd, buffer, 8, 5000) == 8 &&
                                        memcmp(buffer, "\0\0\0\0\0\0\0\0", 8) == 0);
    check("ftruncate down", ftruncate(fd, 10001) == 0 && pread(fd, buffer, 8, 9999) == 2 &&
                                buffer[1] == 'e');
    check("ftruncate up reads zeros", ftruncate(fd, 10003) == 0 &&
                                          pread(fd, buffer, 3, 10000) == 3 && buffer[0] == 'e' &&
                                          buffer[1] == 0 && buffer[2] == 0);
    check("truncate by path", truncate("sparse", 0) == 0 && fstat(fd, &info) == 0 &&
                                  info.st_size == 0);
    close(fd);

    check("mkdir", mkdir("sub", 0755) == 0);
    check("mkdir again: EEXIST", mkdir("sub", 0755) == -1 && errno == EEXIST);
    check("a directory: 2 links, and its parent gains one",
          stat("sub", &info) == 0 && S_ISDIR(info.st_mode) && info.st_nlink == 2 &&
              stat(".", &info) == 0 && info.st_nlink == 3);
    check("rename a file into it", rename("log", "sub/log") == 0 &&
                                       access("log", F_OK) == -1 && errno == ENOENT &&
                                       access("sub/log", R_OK) == 0);
    check("rmdir of a non-empty directory: ENOTEMPTY", rmdir("sub") == -1 && errno == ENOTEMPTY);
    check("rmdir of a file: ENOTDIR", rmdir("notes") == -1 && errno == ENOTDIR);
    check("unlink of a directory: EISDIR", unlink("sub") == -1 && errno == EISDIR);
    check("a path through a file: ENOTDIR", open("notes/x", O_RDONLY) == -1 && errno == ENOTDIR);
    check("a file with a trailing slash: ENOTDIR",
          open("notes/", O_RDONLY) == -1 && errno == ENOTDIR);
    check("a missing parent: ENOENT", open("none/x", O_CREAT | O_WRONLY, 0644) == -1 &&
                                          errno == ENOENT);
    char long_name[300];
    memset(long_name, 'n', 299);
    long_name[299] = 0;
    check("a 299-byte name: ENAMETOOLONG", open(long_name, O_CREAT | O_WRONLY, 0644) == -1 &&
                                               errno == ENAMETOOLONG);
    check("opening a directory for writing: EISDIR", open("sub", O_WRONLY) == -1 && errno == EISDIR);
    check("O_DIRECTORY on a file: ENOTDIR", open("notes", O_RDONLY | O_DIRECTORY) == -1 &&
                                               errno == ENOTDIR);

    check("link", link("notes", "sub/again") == 0 && stat("notes", &info) == 0 &&
                      info.st_nlink == 2);
    check("symlink and readlink", symlink("sub/again", "shortcut") == 0 &&
                                      readlink("shortcut", buffer, sizeof buffer) == 9 &&
                                      memcmp(buffer, "sub/again", 9) == 0);
    struct stat through;
    check("lstat sees the link, stat its target",
          lstat("shortcut", &info) == 0 && S_ISLNK(info.st_mode) && info.st_size == 9 &&
              stat("shortcut", &through) == 0 && S_ISREG(through.st_mode) &&
              through.st_size == 18);
    check("O_NOFOLLOW on a symlink: ELOOP", open("shortcut", O_RDONLY | O_NOFOLLOW) == -1 &&
                                                errno == ELOOP);
    symlink("loop", "loop");
    check("a symlink to itself: ELOOP", open("loop", O_RDONLY) == -1 && errno == ELOOP);
    check("readlink of a file: EINVAL", readlink("notes", buffer, sizeof buffer) == -1 &&
                                            errno == EINVAL);

    check("renameat2(RENAME_NOREPLACE) onto a file: EEXIST",
          renameat2_raw("notes", "sub/log", 1) == -1 && errno == EEXIST);
    check("renameat2(RENAME_EXCHANGE)", renameat2_raw("notes", "sub/log", 2) == 0);
    fd = open("notes", O_RDONLY);
    memset(buffer, 0, sizeof buffer);
    check("the names were swapped", read(fd, buffer, 3) == 3 && memcmp(buffer, "one", 3) == 0);
    close(fd);
    check("rename over a file replaces it", rename("notes", "sub/again") == 0 &&
                                                stat("sub/again", &info) == 0 &&
                                                info.st_size == 13);

    char names[256];
    listing(".", names, sizeof names);
    check("the directory lists its entries", strcmp(names, ". .. loop shortcut sparse sub") == 0);
    listing("sub", names, sizeof names);
    check("and the subdirectory its own", strcmp(names, ". .. again log") == 0);

    fd = open("sub/log", O_RDWR);
    check("unlink an open file", unlink("sub/log") == 0 && access("sub/log", F_OK) == -1);
    check("it is still readable, with no links",
          pread(fd, buffer, 5, 0) == 5 && memcmp(buffer, "hello", 5) == 0 &&
              fstat(fd, &info) == 0 && info.st_nlink == 0);
    close(fd);

    int null = open("/dev/null", O_RDWR);
    check("/dev/null: writes vanish, reads end", write(null, "x", 1) == 1 &&
                                                     read(null, buffer, 8) == 0);
    close(null);
    int zero = open("/dev/zero", O_RDONLY);
    memset(buffer, 1, 16);
    check("/dev/zero reads zeros", read(zero, buffer, 16) == 16 && buffer[0] == 0 &&
                                       buffer[15] == 0);
    close(zero);
    int full = open("/dev/full", O_WRONLY);
    check("/dev/full: ENOSPC", write(full, "x", 1) == -1 && errno == ENOSPC);
    close(full);
    unsigned char noise[32] = {0};
    int random = open("/dev/urandom", O_RDONLY);
    int nonzero = 0;
    if (read(random, noise, sizeof noise) == sizeof noise)
        for (int i = 0; i < 32; i++) nonzero += noise[i] != 0;
    check("/dev/urandom", nonzero > 16);
    close(random);
    check("/dev/null is a character device 1:3",
          stat("/dev/null", &info) == 0 && S_ISCHR(info.st_mode) && info.st_rdev == 0x103);

    /* Times, owners, statx, statfs. */
    struct timespec times[2] = {{1000000000, 5}, {1200000000, 7}};
    check("utimensat sets both times", utimensat(AT_FDCWD, "sparse", times, 0) == 0 &&
                                           stat("sparse", &info) == 0 &&
                                           info.st_atime == 1000000000 &&
                                           info.st_mtime == 1200000000 &&
                                           info.st_mtim.tv_nsec == 7);
    /* The older forms, by their raw syscalls (musl routes utimes through utimensat). */
    struct timeval micro[2] = {{1100000000, 250}, {1300000000, 999999}};
    check("utimes takes microseconds", syscall(SYS_utimes, "sparse", micro) == 0 &&
                                           stat("sparse", &info) == 0 &&
                                           info.st_atime == 1100000000 &&
                                           info.st_atim.tv_nsec == 250000 &&
                                           info.st_mtim.tv_nsec == 999999000);
    struct timeval bad[2] = {{0, 1000000}, {0, 0}};
    check("utimes with tv_usec of a million: EINVAL",
          syscall(SYS_utimes, "sparse", bad) == -1 && errno == EINVAL);
    int timed = open("sparse", O_RDONLY);
    check("futimesat with a NULL path is the fd's file (futimes)",
          syscall(SYS_futimesat, timed, NULL, micro) == 0 && fstat(timed, &info) == 0 &&
              info.st_mtime == 1300000000);
    long utim[2] = {1400000000, 1500000000};
    check("utime takes whole seconds", syscall(SYS_utime, "sparse", utim) == 0 &&
                                           stat("sparse", &info) == 0 &&
                                           info.st_atime == 1400000000 &&
                                           info.st_mtime == 1500000000 &&
                                           info.st_mtim.tv_nsec == 0);
    check("syncfs", syncfs(timed) == 0);
    check("syncfs on a bad fd: EBADF", syncfs(-1) == -1 && errno == EBADF);
    close(timed);
    check("utimensat again", utimensat(AT_FDCWD, "sparse", times, 0) == 0);
    check("chown", chown("sparse", 1234, 5678) == 0 && stat("sparse", &info) == 0 &&
                       info.st_uid == 1234 && info.st_gid == 5678);
    struct statx_result extended;
    check("statx", syscall(SYS_statx, AT_FDCWD, "sparse", 0, 0x7ff, &extended) == 0 &&
                       (extended.stx_mask & 0x7ff) == 0x7ff && extended.stx_uid == 1234 &&
                       extended.stx_mtime.tv_sec == 1200000000 &&
                       S_ISREG(extended.stx_mode));
    struct statfs volume;
    check("statfs", statfs(".", &volume) == 0 && volume.f_namelen == 255 && volume.f_bsize > 0);

    /* flock between two open files of one file; record locks of one process never conflict. */
    int one = open("sparse", O_RDWR), two = open("sparse", O_RDWR);
    check("flock(LOCK_EX)", flock(one, LOCK_EX) == 0);
    check("another open file's LOCK_EX|LOCK_NB: EWOULDBLOCK",
          flock(two, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
    check("after LOCK_UN it is free", flock(one, LOCK_UN) == 0 && flock(two, LOCK_SH | LOCK_NB) == 0 &&
                                          flock(one, LOCK_SH | LOCK_NB) == 0);
    struct flock record = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    check("fcntl(F_SETLK)", fcntl(one, F_SETLK, &record) == 0);
    record.l_type = F_WRLCK;
    check("F_GETLK: our own lock does not conflict", fcntl(two, F_GETLK, &record) == 0 &&
                                                         record.l_type == F_UNLCK);
    close(one);
    close(two);

    /* Copies between files, memfd, fallocate, vectored I/O at an offset, close_range. */
    int source = open("source", O_CREAT | O_RDWR, 0644);
    write(source, "0123456789", 10);
    int target = open("target", O_CREAT | O_RDWR, 0644);
    loff_t from = 2;
    check("copy_file_range", syscall(SYS_copy_file_range, source, &from, target, NULL, 5, 0) == 5 &&
                                 from == 7 && pread(target, buffer, 5, 0) == 5 &&
                                 memcmp(buffer, "23456", 5) == 0);
    off_t at = 5;
    check("sendfile to a file", sendfile(target, source, &at, 100) == 5 && at == 10 &&
                                    pread(target, buffer, 10, 0) == 10 &&
                                    memcmp(buffer, "2345656789", 10) == 0);
    check("fallocate extends", fallocate(target, 0, 0, 8192) == 0 && fstat(target, &info) == 0 &&
                                   info.st_size == 8192);
    struct iovec parts[2] = {{buffer, 3}, {buffer + 3, 3}};
    check("preadv", preadv(source, parts, 2, 4) == 6 && memcmp(buffer, "456789", 6) == 0);
    check("pwritev", pwritev(target, parts, 2, 100) == 6 && pread(target, buffer + 10, 6, 100) == 6 &&
                         memcmp(buffer + 10, "456789", 6) == 0);
    int memory = syscall(SYS_memfd_create, "scratch", 1);
    check("memfd_create: a file to write and read",
          memory >= 0 && write(memory, "in memory", 9) == 9 && pread(memory, buffer, 9, 0) == 9 &&
              memcmp(buffer, "in memory", 9) == 0 && fcntl(memory, F_GETFD) == FD_CLOEXEC);
    close(memory);
    int spare = dup(source), spare2 = dup(source);
    check("close_range", syscall(SYS_close_range, spare, spare2, 0) == 0 &&
                             fcntl(spare, F_GETFD) == -1 && fcntl(spare2, F_GETFD) == -1);
    close(source);
    close(target);
    unlink("source");
    unlink("target");

    /* File mappings: private ones read the file and keep their changes to themselves; shared
     * ones reach the file at msync and munmap. */
    int mapped = open("mapped", O_CREAT | O_RDWR | O_TRUNC, 0644);
    char page[8192];
    for (int i = 0; i < 8192; i++) page[i] = (char)('a' + i % 26);
    write(mapped, page, sizeof page);
    char *private_map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, mapped, 0);
    check("mmap(MAP_PRIVATE) of a file reads it", private_map != MAP_FAILED &&
                                                     memcmp(private_map, page, 8192) == 0);
    private_map[0] = '#';
    check("a private mapping's change stays in it",
          pread(mapped, buffer, 1, 0) == 1 && buffer[0] == 'a');
    /* A write(2) to the file shows in a private mapping's pages the program has not stored
     * to (they are still the file's), not in the one it changed (its own copy now). */
    check("a private mapping's untouched page sees a later pwrite",
          pwrite(mapped, "NEW", 3, 4096 + 500) == 3 && memcmp(private_map + 4096 + 500, "NEW", 3) == 0);
    check("its changed page does not", pwrite(mapped, "X", 1, 1) == 1 && private_map[1] == 'b');
    char *offset_map = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, mapped, 4096);
    check("mmap at an offset", offset_map != MAP_FAILED && offset_map[0] == page[4096]);
    char *shared_map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mapped, 0);
    memcpy(shared_map + 100, "SHARED", 6);
    check("msync writes a shared mapping back", msync(shared_map, 8192, MS_SYNC) == 0 &&
                                                    pread(mapped, buffer, 6, 100) == 6 &&
                                                    memcmp(buffer, "SHARED", 6) == 0);
    /* Coherence, as Linux's one page cache gives: a store is read back by pread at once, a
     * pwrite is seen in the mapping at once (a read-only mapping too, as LMDB relies on). */
    memcpy(shared_map + 300, "STORE", 5);
    check("pread sees a store to a shared mapping at once",
          pread(mapped, buffer, 5, 300) == 5 && memcmp(buffer, "STORE", 5) == 0);
    char *reader = mmap(NULL, 8192, PROT_READ, MAP_SHARED, mapped, 0);
    check("a shared mapping sees pwrite at once",
          pwrite(mapped, "WRITE", 5, 4200) == 5 && memcmp(shared_map + 4200, "WRITE", 5) == 0 &&
              reader != MAP_FAILED && memcmp(reader + 4200, "WRITE", 5) == 0);
    munmap(reader, 8192);
    memcpy(shared_map + 400, "FSYNC", 5);
    check("fsync writes a shared mapping back", fsync(mapped) == 0);
    memcpy(shared_map + 200, "UNMAP", 5);
    check("and so does munmap", munmap(shared_map, 8192) == 0 &&
                                    pread(mapped, buffer, 5, 200) == 5 &&
                                    memcmp(buffer, "UNMAP", 5) == 0);
    /* Two shared mappings of one file are one set of pages: a store through one is seen
     * through the other at once, and outlives the first's munmap. */
    char *map_a = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mapped, 0);
    char *map_b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mapped, 4096);
    memcpy(map_a + 4096 + 10, "TWO", 3);
    check("two shared mappings of a file show the same pages",
          map_a != MAP_FAILED && map_b != MAP_FAILED && memcmp(map_b + 10, "TWO", 3) == 0);
    memcpy(map_b + 20, "BACK", 4);
    check("both ways", memcmp(map_a + 4096 + 20, "BACK", 4) == 0);
    munmap(map_a, 8192);
    memcpy(map_b + 30, "LAST", 4);
    check("the second outlives the first's munmap",
          memcmp(map_b + 10, "TWO", 3) == 0 && msync(map_b, 4096, MS_SYNC) == 0 &&
              pread(mapped, buffer, 4, 4096 + 30) == 4 && memcmp(buffer, "LAST", 4) == 0);
    /* copy_file_range and sendfile read what a shared mapping holds, as read(2) does. */
    memcpy(map_b + 50, "COPY", 4);
    int copy = open("copy", O_CREAT | O_RDWR | O_TRUNC, 0644);
    loff_t copy_from = 4096 + 50;
    check("copy_file_range reads a shared mapping's stores",
          syscall(SYS_copy_file_range, mapped, &copy_from, copy, NULL, 4, 0) == 4 &&
              pread(copy, buffer, 4, 0) == 4 && memcmp(buffer, "COPY", 4) == 0);
    off_t send_from = 4096 + 50;
    check("and so does sendfile", sendfile(copy, mapped, &send_from, 4) == 4 &&
                                      pread(copy, buffer, 4, 4) == 4 &&
                                      memcmp(buffer, "COPY", 4) == 0);
    close(copy);
    unlink("copy");
    /* MADV_DONTNEED: a shared file mapping keeps what was stored (it is the file's page); a
     * private one drops its own changes and reads the file again, not zeros. */
    memcpy(map_b + 40, "KEPT", 4);
    check("MADV_DONTNEED on a shared file mapping keeps its stores",
          madvise(map_b, 4096, MADV_DONTNEED) == 0 && memcmp(map_b + 40, "KEPT", 4) == 0);
    munmap(map_b, 4096);
    check("MADV_DONTNEED on a private file mapping reads the file again",
          private_map[0] == '#' && madvise(private_map, 8192, MADV_DONTNEED) == 0 &&
              private_map[0] == 'a' && memcmp(private_map + 100, "SHARED", 6) == 0);
    munmap(private_map, 8192);
    munmap(offset_map, 4096);
    int write_only = open("mapped", O_WRONLY);
    check("mmap of a write-only fd: EACCES",
          mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, write_only, 0) == MAP_FAILED && errno == EACCES);
    int read_only = open("mapped", O_RDONLY);
    check("a shared writable mapping of a read-only fd: EACCES",
          mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, read_only, 0) == MAP_FAILED &&
              errno == EACCES);
    int ends[2];
    pipe(ends);
    check("mmap of a pipe: ENODEV",
          mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, ends[0], 0) == MAP_FAILED && errno == ENODEV);
    close(ends[0]);
    close(ends[1]);
    close(write_only);
    close(read_only);
    close(mapped);
    unlink("mapped");

    /* The *at calls, the f* calls and fcntl's duplicates, each once. */
    {
        int made = creat("made", 0600);
        struct stat info2;
        check("creat: a new empty file, write-only", made >= 0 && write(made, "abc", 3) == 3 &&
                                                         read(made, buffer, 1) == -1 && errno == EBADF);
        check("fchmod", fchmod(made, 0640) == 0 && stat("made", &info2) == 0 &&
                            (info2.st_mode & 07777) == 0640);
        check("chmod", chmod("made", 0604) == 0 && stat("made", &info2) == 0 &&
                           (info2.st_mode & 07777) == 0604);
        check("fchmodat", fchmodat(AT_FDCWD, "made", 0644, 0) == 0 && stat("made", &info2) == 0 &&
                              (info2.st_mode & 07777) == 0644);
        check("fdatasync", fdatasync(made) == 0);
        sync();
        check("sync", 1);
        struct statfs fs_info;
        check("fstatfs", fstatfs(made, &fs_info) == 0 && fs_info.f_bsize > 0);
        int copy = fcntl(made, F_DUPFD, 100);
        check("F_DUPFD: the lowest free fd from the one given", copy >= 100 &&
                                                                  fcntl(copy, F_GETFD) == 0);
        int copy2 = fcntl(made, F_DUPFD_CLOEXEC, 100);
        check("F_DUPFD_CLOEXEC", copy2 > copy && fcntl(copy2, F_GETFD) == FD_CLOEXEC);
        check("F_GETFL: the access mode", (fcntl(made, F_GETFL) & O_ACCMODE) == O_WRONLY);
        check("dup3 with O_CLOEXEC", dup3(made, 120, O_CLOEXEC) == 120 &&
                                         fcntl(120, F_GETFD) == FD_CLOEXEC);
        check("dup3 onto itself: EINVAL", dup3(made, made, 0) == -1 && errno == EINVAL);
        close(copy);
        close(copy2);
        close(120);
        close(made);
        int reader = open("made", O_RDONLY);
        int waiting = -1;
        check("FIONREAD on a file: the bytes after the position",
              read(reader, buffer, 1) == 1 && ioctl(reader, FIONREAD, &waiting) == 0 && waiting == 2);
        close(reader);
        int here = open(".", O_RDONLY | O_DIRECTORY);
        check("mkdirat", mkdirat(here, "at_sub", 0755) == 0);
        check("symlinkat", symlinkat("../made", here, "at_sub/link") == 0);
        ssize_t length = readlinkat(here, "at_sub/link", buffer, sizeof buffer);
        check("readlinkat reads the target", length == 7 && memcmp(buffer, "../made", 7) == 0);
        check("renameat", renameat(here, "at_sub/link", here, "at_sub/moved") == 0 &&
                              faccessat(here, "at_sub/moved", F_OK, AT_SYMLINK_NOFOLLOW) == 0);
        check("fchownat and lchown", fchownat(here, "made", 0, 0, 0) == 0 &&
                                         lchown("at_sub/moved", 0, 0) == 0);
        int sub = open("at_sub", O_RDONLY | O_DIRECTORY);
        char where[256];
        check("fchdir", fchdir(sub) == 0 && getcwd(where, sizeof where) != NULL &&
                            strcmp(where + strlen(where) - 7, "/at_sub") == 0 && fchdir(here) == 0);
        close(sub);
        unlink("at_sub/moved");
        rmdir("at_sub");
        unlink("made");
        /* O_PATH: a handle for the name, not for I/O. */
        int handle = open(".", O_PATH);
        check("O_PATH: fstat works, read is EBADF",
              handle >= 0 && fstat(handle, &info2) == 0 && S_ISDIR(info2.st_mode) &&
                  read(handle, buffer, 1) == -1 && errno == EBADF);
        close(handle);
        /* O_TMPFILE: a file with no name, in the directory's filesystem. */
        int unnamed = open(".", O_TMPFILE | O_RDWR, 0600);
        check("O_TMPFILE: an unnamed file to read and write",
              unnamed >= 0 && pwrite(unnamed, "temp", 4, 0) == 4 &&
                  pread(unnamed, buffer, 4, 0) == 4 && memcmp(buffer, "temp", 4) == 0 &&
                  fstat(unnamed, &info2) == 0 && info2.st_nlink == 0);
        close(unnamed);
        close(here);
        int random_fd = open("/dev/random", O_RDONLY);
        char noise[16] = {0}, zero[16] = {0};
        check("/dev/random gives bytes", random_fd >= 0 && read(random_fd, noise, 16) == 16 &&
                                             memcmp(noise, zero, 16) != 0);
        close(random_fd);
    }
    /* One read or write moves the whole count of a regular file, however large. */
    {
        size_t big = 3 << 20;
        char *out = malloc(big), *in = malloc(big);
        for (size_t i = 0; i < big; i++) out[i] = (char)(i * 7);
        int whole = open("whole", O_CREAT | O_RDWR | O_TRUNC, 0644);
        check("a 3 MiB write in one call", write(whole, out, big) == (ssize_t)big);
        check("and a 3 MiB read", pread(whole, in, big, 0) == (ssize_t)big &&
                                      memcmp(in, out, big) == 0);
        close(whole);
        unlink("whole");
        free(out);
        free(in);
    }
    /* O_SYNC and O_DSYNC are kept (F_GETFL shows them) and writes work. */
    int synced = open("synced", O_CREAT | O_WRONLY | O_TRUNC | O_SYNC, 0644);
    check("O_SYNC shows in F_GETFL", (fcntl(synced, F_GETFL) & O_SYNC) == O_SYNC &&
                                         write(synced, "durable", 7) == 7);
    close(synced);
    int dsynced = open("synced", O_WRONLY | O_DSYNC);
    check("O_DSYNC shows in F_GETFL", (fcntl(dsynced, F_GETFL) & O_DSYNC) == O_DSYNC &&
                                          (fcntl(dsynced, F_GETFL) & O_SYNC) != O_SYNC);
    close(dsynced);
    unlink("synced");
    /* /dev/stdout and /dev/fd/N open the fds they name; /proc/self/fd/N of a file opens the
     * file again, with a position of its own; /proc/self/exe is the program. */
    int out_again = open("/dev/stdout", O_WRONLY);
    check("open(/dev/stdout)", out_again >= 0);
    close(out_again);
    int file_fd = open("reopened", O_CREAT | O_RDWR | O_TRUNC, 0644);
    write(file_fd, "0123456789", 10);
    char fd_path[64];
    snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", file_fd);
    int again = open(fd_path, O_RDONLY);
    check("/proc/self/fd/N of a file opens it with its own position",
          again >= 0 && lseek(file_fd, 0, SEEK_CUR) == 10 && read(again, buffer, 3) == 3 &&
              memcmp(buffer, "012", 3) == 0 && lseek(file_fd, 0, SEEK_CUR) == 10);
    snprintf(fd_path, sizeof fd_path, "/dev/fd/%d", file_fd);
    int via_dev = open(fd_path, O_RDONLY);
    check("and so does /dev/fd/N", via_dev >= 0 && read(via_dev, buffer, 2) == 2 &&
                                       memcmp(buffer, "01", 2) == 0);
    close(via_dev);
    close(again);
    close(file_fd);
    unlink("reopened");
    int exe = open("/proc/self/exe", O_RDONLY);
    check("open(/proc/self/exe) reads the program", exe >= 0 && read(exe, buffer, 4) == 4 &&
                                                        memcmp(buffer, "\177ELF", 4) == 0);
    close(exe);
    check("clean up", unlink("sub/again") == 0 && rmdir("sub") == 0 && unlink("sparse") == 0 &&
                          unlink("shortcut") == 0 && unlink("loop") == 0);
    check("leave and remove the directory", chdir("/") == 0 && rmdir(dir) == 0 &&
                                                access(dir, F_OK) == -1 && errno == ENOENT);
    return failures;
}

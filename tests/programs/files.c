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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

    check("clean up", unlink("sub/again") == 0 && rmdir("sub") == 0 && unlink("sparse") == 0 &&
                          unlink("shortcut") == 0 && unlink("loop") == 0);
    check("leave and remove the directory", chdir("/") == 0 && rmdir(dir) == 0 &&
                                                access(dir, F_OK) == -1 && errno == ENOENT);
    return failures;
}

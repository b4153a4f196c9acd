/* A program's files on an ext4 volume mounted at /data: "write" makes a directory, a file it
 * fsyncs, a symlink and a hard link; with no argument it reads them back (after a reboot). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct statfs volume;
    statfs("/data", &volume);
    printf("ext4: %s\n", volume.f_type == 0xef53 ? "yes" : "no");
    if (argc > 1 && strcmp(argv[1], "write") == 0) {
        mkdir("/data/app", 0750);
        int fd = open("/data/app/dump.rdb", O_CREAT | O_WRONLY | O_TRUNC, 0640);
        printf("write: %zd\n", write(fd, "REDIS0011 payload\n", 18));
        printf("fsync: %d\n", fsync(fd));
        close(fd);
        printf("symlink: %d\n", symlink("app/dump.rdb", "/data/latest"));
        printf("link: %d\n", link("/data/app/dump.rdb", "/data/app/backup.rdb"));
        return 0;
    }
    char buffer[64] = {0};
    int fd = open("/data/latest", O_RDONLY);
    printf("read: %zd: %s", read(fd, buffer, sizeof buffer - 1), buffer);
    struct stat info;
    stat("/data/app/dump.rdb", &info);
    printf("mode %o, links %lu\n", info.st_mode & 07777, (unsigned long)info.st_nlink);
    stat("/data/app", &info);
    printf("directory mode %o\n", info.st_mode & 07777);
    return 0;
}

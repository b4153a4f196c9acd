/* The VM's disk as a block device: "write" puts a record at byte 5000 of /dev/vda and fsyncs
 * (a FLUSH); "read" prints what is there. Also prints the size (BLKGETSIZE64, SEEK_END). */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = open("/dev/vda", O_RDWR);
    if (fd < 0) {
        perror("/dev/vda");
        return 1;
    }
    struct stat info;
    fstat(fd, &info);
    unsigned long long size = 0;
    ioctl(fd, BLKGETSIZE64, &size);
    printf("block device: %s, size %llu, SEEK_END %lld\n", S_ISBLK(info.st_mode) ? "yes" : "no",
           size, (long long)lseek(fd, 0, SEEK_END));
    if (argc > 1 && strcmp(argv[1], "write") == 0) {
        const char *record = "a record that outlives the VM";
        printf("pwrite: %zd, fsync: %d\n", pwrite(fd, record, strlen(record), 5000), fsync(fd));
    } else {
        char buffer[64] = {0};
        printf("pread: %zd: %s\n", pread(fd, buffer, 29, 5000), buffer);
        printf("past the end: %zd\n", pread(fd, buffer, 8, (off_t)size));
    }
    return 0;
}

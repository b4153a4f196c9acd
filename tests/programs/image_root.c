/* Runs from an image `pith build` made: prints its argv and working directory, reads a file
 * the image carries, and counts its boots in a file it keeps on the image. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    printf("argv:");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    char cwd[256];
    printf("\ncwd: %s\n", getcwd(cwd, sizeof cwd));
    char text[64] = "";
    int conf = open("/etc/app/app.conf", O_RDONLY);
    if (read(conf, text, sizeof text - 1) < 0) text[0] = 0;
    printf("conf: %s", text);
    int counter = open("boots", O_RDWR | O_CREAT, 0644);
    char number[16] = "";
    int boots = read(counter, number, sizeof number - 1) > 0 ? atoi(number) : 0;
    boots++;
    lseek(counter, 0, SEEK_SET);
    dprintf(counter, "%d\n", boots);
    fsync(counter);
    printf("boots: %d\n", boots);
    return 0;
}

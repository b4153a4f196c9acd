/* Copies stdin to stdout with read(2)/write(2) until end of file, then reports on stderr how
 * many bytes it saw and what the last read returned. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    char buffer[8192];
    long total = 0;
    ssize_t count;
    while ((count = read(0, buffer, sizeof buffer)) > 0) {
        total += count;
        for (ssize_t done = 0; done < count;) {
            ssize_t written = write(1, buffer + done, count - done);
            if (written <= 0) return 2;
            done += written;
        }
    }
    fprintf(stderr, "copied %ld bytes, last read %zd\n", total, count);
    return count == 0 ? 0 : 1;
}

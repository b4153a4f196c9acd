/* Calls syscall numbers that do not exist on x86_64 Linux: the program must get ENOSYS back
 * (and keep running), as on Linux. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    long numbers[] = {400, 423, 1000};
    for (unsigned i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        errno = 0;
        long result = syscall(numbers[i], 1, 2, 3);
        printf("syscall(%ld) = %ld, errno %s\n", numbers[i], result, errno == ENOSYS ? "ENOSYS" : strerror(errno));
    }
    return 0;
}

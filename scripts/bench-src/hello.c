/* The smallest stdio program: one line on stdout, exit 0. The memory benchmark boots it with less
 * and less guest RAM (Pith: `pith run -m SIZE`; the Linux guest: QEMU's -m SIZE) to find the
 * least each system needs to run a program at all. */
#include <stdio.h>

int main(void)
{
    printf("hello, world\n");
    return 0;
}

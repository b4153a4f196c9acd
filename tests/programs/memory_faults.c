/* Memory protections are enforced: argv[1] picks the violation.
 *   readonly: write to a page made read-only with mprotect
 *   rodata:   write to a string literal (read-only segment)
 *   nx:       jump into a data page (no-execute)
 *   none:     read a PROT_NONE page
 *   int80:    the i386 syscall instruction (exit(7) there), which Pith does not implement */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    char *page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) { perror("mmap"); return 2; }
    page[0] = 1;
    printf("faulting: %s\n", what);
    fflush(stdout);
    if (strcmp(what, "readonly") == 0) {
        mprotect(page, 4096, PROT_READ);
        ((volatile char *)page)[1] = 2;
    } else if (strcmp(what, "rodata") == 0) {
        volatile char *literal = (volatile char *)"constant";
        literal[0] = 'C';
    } else if (strcmp(what, "nx") == 0) {
        page[0] = (char)0xc3; /* ret */
        ((void (*)(void))page)();
    } else if (strcmp(what, "int80") == 0) {
        __asm__ volatile("int $0x80" : : "a"(1), "b"(7));
    } else if (strcmp(what, "none") == 0) {
        mprotect(page, 4096, PROT_NONE);
        printf("%d\n", ((volatile char *)page)[0]);
    }
    printf("no fault\n");
    return 0;
}

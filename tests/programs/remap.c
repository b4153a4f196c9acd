/* mremap and mincore: glibc's realloc of a large block goes through mremap; a mapping grows,
 * moves with its contents, shrinks; mincore says which pages have memory. Prints "ok NAME" or
 * "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

int main(void) {
    size_t small = 4 << 20, large = 64 << 20;
    char *block = malloc(small);
    memset(block, 0x5a, small);
    block = realloc(block, large);
    check("realloc keeps the contents", block && block[0] == 0x5a && block[small - 1] == 0x5a);
    block[large - 1] = 1;
    free(block);

    char *area = mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    area[0] = 7;
    unsigned char resident[2];
    check("mincore", mincore(area, 2 * 4096, resident) == 0 && (resident[0] & 1) == 1 && (resident[1] & 1) == 0);
    /* Something right after it (ours, or a mapping already there: EEXIST), so growing must move. */
    char *next = mmap(area + 2 * 4096, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    int blocked = next != MAP_FAILED || errno == EEXIST;
    char *moved = mremap(area, 2 * 4096, 1 << 20, 0);
    check("growing without MREMAP_MAYMOVE fails when blocked", blocked && moved == MAP_FAILED && errno == ENOMEM);
    moved = mremap(area, 2 * 4096, 1 << 20, MREMAP_MAYMOVE);
    check("MREMAP_MAYMOVE moves it with its contents", moved != MAP_FAILED && moved[0] == 7 && moved[(1 << 20) - 1] == 0);
    char *shrunk = mremap(moved, 1 << 20, 4096, 0);
    check("shrinking stays in place", shrunk == moved && shrunk[0] == 7);

    printf("%d failures\n", failures);
    return failures;
}

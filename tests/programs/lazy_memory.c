/* Memory is backed when touched, not when mapped, and freed when unmapped: run in a 256 MiB VM,
 * it maps 1 GiB four times over and touches 64 MiB of it each time; it reserves 64 GiB with
 * PROT_NONE and uses 1 MiB of it; and it puts 6 MiB on the stack. Prints "ok NAME" or
 * "FAIL NAME" per check and exits with the number of failures. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static int failures;

static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

/* VmRSS from /proc/self/status, in kB; -1 if unreadable. */
static long resident_kb(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (status && fgets(line, sizeof line, status))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (status) fclose(status);
    return kb;
}

static int sparse_round(int round) {
    size_t size = 1ul << 30, stride = 64 << 10;
    volatile unsigned char *area = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return 0;
    long before = resident_kb();
    for (size_t offset = 0; offset < size; offset += stride) area[offset] = (unsigned char)(offset / stride + round);
    long touched = resident_kb();
    int ok = 1;
    for (size_t offset = 0; offset < size; offset += stride)
        ok &= area[offset] == (unsigned char)(offset / stride + round) && area[offset + 1] == 0;
    int unmapped = munmap((void *)area, size) == 0;
    long after = resident_kb();
    /* 16384 pages touched: 64 MiB more resident, and given back by munmap. */
    if (round == 0)
        check("VmRSS grows by what was touched, not by what was mapped", touched - before >= 60 * 1024 && touched - before < 80 * 1024);
    if (round == 0)
        check("munmap gives it back", after - before < 4 * 1024);
    return unmapped && ok;
}

static int deep_stack(void) {
    volatile char big[6 << 20];
    for (size_t i = 0; i < sizeof big; i += 4096) big[i] = (char)i;
    int ok = 1;
    for (size_t i = 0; i < sizeof big; i += 4096) ok &= big[i] == (char)i;
    return ok;
}

int main(void) {
    for (int round = 0; round < 4; round++) {
        char name[64];
        snprintf(name, sizeof name, "1 GiB mapping, 64 MiB touched, round %d", round + 1);
        check(name, sparse_round(round));
    }

    size_t reserve = 64ul << 30;
    char *reservation = mmap(0, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    check("64 GiB PROT_NONE reservation", reservation != MAP_FAILED);
    if (reservation != MAP_FAILED) {
        char *middle = reservation + (32ul << 30);
        int ok = mprotect(middle, 1 << 20, PROT_READ | PROT_WRITE) == 0;
        if (ok) {
            memset(middle, 0x5a, 1 << 20);
            ok = middle[0] == 0x5a && middle[(1 << 20) - 1] == 0x5a;
        }
        check("1 MiB made usable inside it", ok);
        check("unmapping the reservation", munmap(reservation, reserve) == 0);
    }

    check("6 MiB on the stack", deep_stack());

    char *populated = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    check("MAP_POPULATE", populated != MAP_FAILED && populated[12345] == 0);

    printf("%d failures\n", failures);
    return failures;
}

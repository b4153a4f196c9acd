/* A dynamically linked program: started by its interpreter (ld.so), which maps its libraries
 * with mmap; it then loads one more at run time (dlopen), and runs threads from libc.
 * Prints "ok"/"FAIL" lines; the same as on Linux. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

extern char _start[]; /* the program's entry point, from crt1 */

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static int objects, interpreter_at_base, program_phdr_at_phdr;
static int count_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size, (void)data;
    /* The program comes first, its headers where AT_PHDR says; the interpreter is the
     * object loaded at AT_BASE. */
    if (objects == 0) program_phdr_at_phdr = (unsigned long)info->dlpi_phdr == getauxval(AT_PHDR);
    if (info->dlpi_addr == getauxval(AT_BASE)) interpreter_at_base = 1;
    objects++;
    return 0;
}

static void *worker(void *argument) { return (char *)argument + 1; }

int main(void) {
    check("AT_BASE is the interpreter's load address", getauxval(AT_BASE) != 0);
    check("AT_ENTRY is where the program starts", getauxval(AT_ENTRY) == (unsigned long)_start);
    dl_iterate_phdr(count_object, NULL);
    check("the program, its libraries and the vDSO are loaded", objects >= 3);
    check("AT_PHDR is where the program's headers are", program_phdr_at_phdr);
    check("AT_BASE is where the interpreter was loaded", interpreter_at_base);
    pthread_t thread;
    void *result = NULL;
    check("a thread from libc runs and joins",
          pthread_create(&thread, NULL, worker, (void *)41) == 0 &&
              pthread_join(thread, &result) == 0 && result == (void *)42);
    char *copy = strdup("library calls");
    check("malloc and strdup", copy && strcmp(copy, "library calls") == 0);
    free(copy);
#ifdef __GLIBC__
    /* libm is not a DT_NEEDED of this program: the test packs it with --file. */
    void *libm = dlopen("libm.so.6", RTLD_NOW);
    double (*cosine)(double) = libm ? (double (*)(double))dlsym(libm, "cos") : NULL;
    check("dlopen of a library by name, and dlsym", cosine && cosine(0.0) == 1.0);
    check("dlclose", libm && dlclose(libm) == 0);
    check("dlopen of a missing library fails with a message",
          dlopen("libdoes-not-exist.so.1", RTLD_NOW) == NULL && dlerror() != NULL);
#endif
    return failures;
}

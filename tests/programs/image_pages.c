/* Pages of files that come from the image: Pith shows an ELF file's whole pages where they lie
 * in the image, to private mappings and as the program's own segments, and copies a page when
 * the program stores to it. Every check holds on Linux as well (private mappings share the
 * page cache until a store), and none may reach the file: it is read back after each store.
 * argv[1]: a writable copy of an ELF file of at least three pages (the test packs it into the
 * image). Prints "ok NAME" or "FAIL NAME" per check and exits with the number of failures. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

static int failures;

static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

/* In the program's data segment, from its file: four pages of 0x5a. */
static unsigned char initialized[4 * PAGE] = {[0 ... 4 * PAGE - 1] = 0x5a};

struct place {
    uintptr_t address;
    off_t offset;
    int found;
};

/* Where in the program's file the byte at place->address comes from (the first object
 * dl_iterate_phdr reports is the program). */
static int find_in_program(struct dl_phdr_info *info, size_t size, void *data) {
    struct place *place = data;
    (void)size;
    for (int index = 0; index < info->dlpi_phnum; index++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[index];
        uintptr_t start = info->dlpi_addr + header->p_vaddr;
        if (header->p_type == PT_LOAD && place->address >= start &&
            place->address < start + header->p_filesz) {
            place->offset = header->p_offset + (place->address - start);
            place->found = 1;
        }
    }
    return 1;
}

static unsigned char file_byte(int fd, off_t offset) {
    unsigned char byte = 0;
    if (pread(fd, &byte, 1, offset) != 1) return 0;
    return byte;
}

static void program_segments(void) {
    int exe = open("/proc/self/exe", O_RDONLY);
    struct place place = {(uintptr_t)&initialized[PAGE + 904], 0, 0};
    dl_iterate_phdr(find_in_program, &place);
    check("the program's data comes from its file", exe >= 0 && place.found &&
          file_byte(exe, place.offset) == 0x5a);
    initialized[PAGE + 904] = 7;
    initialized[3 * PAGE] ^= 0xff;
    check("a store to the program's data changes its memory",
          initialized[PAGE + 904] == 7 && initialized[PAGE + 905] == 0x5a &&
          initialized[3 * PAGE] == (0x5a ^ 0xff) && initialized[3 * PAGE + 1] == 0x5a);
    check("and not its file", file_byte(exe, place.offset) == 0x5a);
    /* The program's text, mapped from its file, is what runs. */
    struct place code = {(uintptr_t)&program_segments, 0, 0};
    dl_iterate_phdr(find_in_program, &code);
    unsigned char text[64];
    check("the program's text is its file's bytes",
          code.found && pread(exe, text, sizeof text, code.offset) == sizeof text &&
          memcmp(text, (const void *)&program_segments, sizeof text) == 0);
    close(exe);
}

static void private_mappings(const char *path) {
    size_t length = 3 * PAGE;
    int fd = open(path, O_RDWR);
    unsigned char *file = malloc(length);
    check("the file opens and has three pages",
          fd >= 0 && pread(fd, file, length, 0) == (ssize_t)length);
    unsigned char *writable = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    unsigned char *readable = mmap(NULL, length, PROT_READ, MAP_PRIVATE, fd, 0);
    if (writable == MAP_FAILED || readable == MAP_FAILED) {
        check("private mappings of the file", 0);
        return;
    }
    check("private mappings show the file",
          memcmp(writable, file, length) == 0 && memcmp(readable, file, length) == 0);

    writable[PAGE] ^= 0xff;
    check("a store changes that mapping",
          writable[PAGE] == (file[PAGE] ^ 0xff) && writable[PAGE + 1] == file[PAGE + 1]);
    check("and not another mapping of the file", readable[PAGE] == file[PAGE]);
    check("and not the file", file_byte(fd, PAGE) == file[PAGE]);

    unsigned char changed = file[2 * PAGE + 10] ^ 0x55;
    check("write(2) to the file", pwrite(fd, &changed, 1, 2 * PAGE + 10) == 1);
    check("shows in the pages no mapping stored to",
          writable[2 * PAGE + 10] == changed && readable[2 * PAGE + 10] == changed);
    unsigned char other = file[PAGE + 20] ^ 0x33;
    check("write(2) to a page one mapping stored to", pwrite(fd, &other, 1, PAGE + 20) == 1);
    check("shows in the other mapping only",
          readable[PAGE + 20] == other && writable[PAGE + 20] == file[PAGE + 20]);

    check("MADV_DONTNEED drops the stores", madvise(writable + PAGE, PAGE, MADV_DONTNEED) == 0);
    check("and the page reads the file again",
          writable[PAGE] == file[PAGE] && writable[PAGE + 20] == other);

    check("mprotect makes the read-only mapping writable",
          mprotect(readable, length, PROT_READ | PROT_WRITE) == 0);
    readable[0] ^= 0xff;
    check("a store after mprotect changes that mapping alone",
          readable[0] == (file[0] ^ 0xff) && writable[0] == file[0] &&
          file_byte(fd, 0) == file[0]);

    unsigned char *again = mmap(NULL, length, PROT_READ, MAP_PRIVATE, fd, 0);
    unsigned char *moved =
        again == MAP_FAILED ? MAP_FAILED : mremap(again, length, 2 * length, MREMAP_MAYMOVE);
    check("mremap moves the file's pages with their bytes",
          moved != MAP_FAILED && memcmp(moved, file, 8) == 0 && moved[PAGE] == file[PAGE] &&
          moved[2 * PAGE + 10] == changed);

    munmap(writable, length);
    munmap(readable, length);
    if (moved != MAP_FAILED) munmap(moved, 2 * length);
    unsigned char after[2];
    check("after all that the file holds just the two writes",
          pread(fd, after, 1, 0) == 1 && after[0] == file[0] &&
          pread(fd, after, 2, PAGE) == 2 && after[0] == file[PAGE] &&
          file_byte(fd, PAGE + 20) == other && file_byte(fd, 2 * PAGE + 10) == changed);
    close(fd);
    free(file);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WRITABLE-ELF-COPY\n", argv[0]);
        return 100;
    }
    program_segments();
    private_mappings(argv[1]);
    printf("%d failures\n", failures);
    return failures;
}

/* A QEMU TCG plugin that counts the guest's work, for scripts/bench --servers:
 *
 *   -plugin /path/insn_count.so,out=/path/counters
 *
 * `out` is a file the plugin makes and maps shared; three little-endian u64s there are kept
 * current while the guest runs, so the benchmark reads them whenever it likes (before and
 * after a load, at the first answer), without stopping the VM:
 *
 *   [0] guest instructions executed (each translated block adds its length when it runs: a
 *       block an exception leaves half-way counts whole, which is rare)
 *   [1] guest instructions translated (first-time translation is most of a TCG guest's
 *       start-up: it grows with the distinct code run, not with how often it runs)
 *   [2] translated blocks
 *
 * One vCPU (-smp 1): the inline add needs no atomics. QEMU 7.2's plugin API, version 1:
 * Debian 12 ships no qemu-plugin.h, so the few declarations used are written out here from
 * QEMU's documentation of that API. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                                  qemu_plugin_vcpu_tb_trans_cb_t cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
                                                     enum qemu_plugin_op op, void *ptr,
                                                     uint64_t imm);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static volatile uint64_t *counters;

static void on_translation(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t instructions = qemu_plugin_tb_n_insns(tb);
    counters[1] += instructions;
    counters[2] += 1;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                             (void *)&counters[0], instructions);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const void *info, int argc,
                                                               char **argv)
{
    (void)info;
    const char *out = NULL;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0)
            out = argv[i] + 4;
    if (out == NULL) {
        fprintf(stderr, "insn_count: give the counters' file as out=PATH\n");
        return -1;
    }
    int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 4096) != 0) {
        perror(out);
        return -1;
    }
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (page == MAP_FAILED) {
        perror("insn_count: mmap");
        return -1;
    }
    counters = page;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translation);
    return 0;
}

/* Reads what `pith run --dir`, `--file` and `--workdir` put into the VM: prints each file's
 * first line, a symlink's target, the working directory, and the program's own size as its
 * path shows it. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *path) {
    char line[256] = "";
    FILE *file = fopen(path, "r");
    if (!file) {
        printf("%s: missing\n", path);
        return;
    }
    if (!fgets(line, sizeof line, file)) line[0] = 0;
    fclose(file);
    line[strcspn(line, "\n")] = 0;
    printf("%s: %s\n", path, line);
}

int main(void) {
    show("/etc/app/app.conf");
    show("sub/nested.txt");
    show("/data/one.txt");
    char target[64] = "";
    readlink("/etc/app/link", target, sizeof target - 1);
    printf("link -> %s\n", target);
    char cwd[256];
    printf("cwd: %s\n", getcwd(cwd, sizeof cwd));
    struct stat self, script;
    char own[256] = "";
    readlink("/proc/self/exe", own, sizeof own - 1);
    printf("own path readable: %s\n", stat(own, &self) == 0 && self.st_size > 1000 ? "yes" : "no");
    printf("mode kept: %s\n", stat("/etc/app/run.sh", &script) == 0 && (script.st_mode & 0777) == 0750 ? "yes" : "no");
    return 0;
}

/* What glibc finds in the /etc `pith run` writes: the user and group the program runs as, the
 * host name, localhost, the resolver; and the supplementary groups (getgroups/setgroups). */
#define _GNU_SOURCE
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    struct passwd *user = getpwuid(getuid());
    struct group *group = getgrgid(getgid());
    printf("user: %s, home %s\n", user ? user->pw_name : "?", user ? user->pw_dir : "?");
    printf("group: %s\n", group ? group->gr_name : "?");
    struct hostent *local = gethostbyname("localhost");
    printf("localhost: %s\n", local ? "resolves" : "does not resolve");
    char name[64] = {0};
    gethostname(name, sizeof name);
    printf("hostname: %s\n", name);
    FILE *resolv = fopen("/etc/resolv.conf", "r");
    char line[128] = {0};
    if (resolv) fgets(line, sizeof line, resolv);
    printf("resolv.conf: %s", line);
    FILE *hosts = fopen("/etc/hosts", "r");
    if (hosts && fgets(line, sizeof line, hosts)) printf("hosts: %s", line);
    gid_t groups[4];
    printf("groups at start: %d\n", getgroups(4, groups));
    gid_t wanted[2] = {5, 3};
    int set = setgroups(2, wanted);
    int count = getgroups(4, groups);
    printf("setgroups: %d, then %d: %u %u\n", set, count, groups[0], groups[1]);
    return 0;
}

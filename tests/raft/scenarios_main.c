/* scenarios_main.c — runs Raft scenario files (script.h): raft_scenarios [-v] PATH...; a PATH that is a
 * directory stands for every *.txt in it, in name order. Prints one line per file; exit status 0 if all
 * passed, 1 if any failed, 2 on bad usage or when no file was found. ctest runs it as raft.scenarios on
 * tests/raft/testdata. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "script.h"

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_one(const char *path, int verbose, int *failed)
{
    char err[512];
    if (tn_rt_script_file(path, stdout, verbose, err, sizeof err) == 0) {
        printf("ok   %s\n", path);
        return 0;
    }
    printf("FAIL %s\n     %s\n", path, err);
    (*failed)++;
    return 1;
}

/* Runs every *.txt of dir in name order; returns how many there were. */
static int run_dir(const char *dir, int verbose, int *failed)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".txt")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **g = realloc(names, cap * sizeof *g);
            if (!g) exit(2);
            names = g;
        }
        names[n] = malloc(strlen(dir) + len + 2);
        if (!names[n]) exit(2);
        size_t dl = strlen(dir);
        sprintf(names[n], "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        run_one(names[i], verbose, failed);
        free(names[i]);
    }
    free(names);
    return (int)n;
}

int main(int argc, char **argv)
{
    int verbose = 0, failed = 0, files = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) {
            verbose = 1;
            continue;
        }
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "raft_scenarios: %s: no such file or directory\n", argv[i]);
            return 2;
        }
        if (S_ISDIR(st.st_mode)) {
            files += run_dir(argv[i], verbose, &failed);
        } else {
            run_one(argv[i], verbose, &failed);
            files++;
        }
    }
    if (!files) {
        fprintf(stderr, "usage: raft_scenarios [-v] FILE|DIR...\n");
        return 2;
    }
    printf("%d scenario files, %d failed\n", files, failed);
    return failed ? 1 : 0;
}

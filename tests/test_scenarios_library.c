/*
 * tests/test_scenarios_library.c — the scenario library and the documented
 * examples run green with the real binary.
 *
 * For every scenarios/NAME.lua and docs/examples/NAME.lua: `chaoslab run FILE
 * --db TMP --jobs 2` over the file's own seeds must exit 0 (every
 * expectation held; for a teach file, the weak strategy showed its
 * violation and the strong one passed). One seed of one scenario is run
 * twice with --json and the trace hashes must match (determinism). Two
 * negative tests show the runner can fail: a misspelt declaration key is
 * exit 2 naming the file and line, and a teach file whose two sides are the
 * same strategy cannot demonstrate its lesson (exit 1).
 *
 * The binary and the source tree come from the compile definitions
 * CHAOSLAB_BINARY and CHAOSLAB_SOURCE_DIR. Temporary files live under
 * $TMPDIR (or /tmp) and are removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIB_FILES_MAX 128u          /* scenario + example files tested */
#define LIB_PATH_MAX 1024u
#define LIB_ARGS_MAX 16u
#define LIB_OUTPUT_MAX (256u * 1024u) /* bytes of a run's output kept */

typedef struct lib_run {
    int exit_code;                  /* -1 if it did not exit normally */
    char output[LIB_OUTPUT_MAX];    /* stdout + stderr, NUL-terminated */
} lib_run_t;

static char lib_files[LIB_FILES_MAX][LIB_PATH_MAX];
static unsigned lib_files_count;

static const char *lib_tmpdir(void) {
    const char *t = getenv("TMPDIR");
    return (t != NULL && t[0] != '\0') ? t : "/tmp";
}

/* Run the binary with argv (NULL-terminated, argv[0] included) and collect
 * its combined output. Asserts on fork/exec plumbing failures: those are
 * test-environment errors, not results. */
static void lib_exec(char *const argv[], lib_run_t *run) {
    char out_path[LIB_PATH_MAX];
    snprintf(out_path, sizeof(out_path), "%s/chaoslab_lib_out_%ld.txt", lib_tmpdir(),
             (long)getpid());
    int fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
    run->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    ssize_t n = pread(fd, run->output, LIB_OUTPUT_MAX - 1, 0);
    run->output[n > 0 ? (size_t)n : 0] = '\0';
    close(fd);
    unlink(out_path);
}

static void lib_db_path(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "%s/chaoslab_lib_%s_%ld.db", lib_tmpdir(), tag, (long)getpid());
    unlink(buf);
}

/* `chaoslab run FILE --db TMP --jobs 2` plus up to 4 extra arguments. */
static void lib_run_file(const char *file, const char *const extra[], lib_run_t *run) {
    char db[LIB_PATH_MAX];
    lib_db_path(db, sizeof(db), "run");
    char *argv[LIB_ARGS_MAX];
    unsigned argc = 0;
    argv[argc++] = (char *)CHAOSLAB_BINARY;
    argv[argc++] = (char *)"run";
    argv[argc++] = (char *)file;
    argv[argc++] = (char *)"--db";
    argv[argc++] = db;
    argv[argc++] = (char *)"--jobs";
    argv[argc++] = (char *)"2";
    for (unsigned i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(argc < LIB_ARGS_MAX - 1);
        argv[argc++] = (char *)extra[i];
    }
    argv[argc] = NULL;
    lib_exec(argv, run);
    unlink(db);
}

static int lib_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int lib_cmp(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

/* Collect the .lua files of DIR (sorted) into lib_files. */
static void lib_collect(const char *dir) {
    char path[LIB_PATH_MAX / 2];
    snprintf(path, sizeof(path), "%s/%s", CHAOSLAB_SOURCE_DIR, dir);
    DIR *d = opendir(path);
    if (d == NULL) return;
    unsigned first = lib_files_count;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !lib_ends_with(e->d_name, ".lua")) continue;
        assert(lib_files_count < LIB_FILES_MAX);
        assert(strlen(e->d_name) < LIB_PATH_MAX / 2 - 1);
        snprintf(lib_files[lib_files_count], LIB_PATH_MAX, "%s/%s", path, e->d_name);
        lib_files_count++;
    }
    closedir(d);
    qsort(lib_files[first], lib_files_count - first, LIB_PATH_MAX, lib_cmp);
}

/* One library file over its own seeds: exit 0. */
static void test_library_file(void **state) {
    const char *file = (const char *)*state;
    lib_run_t *run = malloc(sizeof(*run));
    assert_non_null(run);
    lib_run_file(file, NULL, run);
    if (run->exit_code != 0)
        print_message("%s exited %d:\n%s\n", file, run->exit_code, run->output);
    else
        print_message("%s: ok\n", file);
    int code = run->exit_code;
    free(run);
    assert_int_equal(code, 0);
}

/* The value after "trace_hash" in --json output, or NULL. Accepts a JSON
 * string or number. */
static const char *lib_trace_hash(const char *json, char *buf, size_t cap) {
    const char *p = strstr(json, "\"trace_hash\"");
    if (p == NULL) return NULL;
    p = strchr(p + strlen("\"trace_hash\""), ':');
    if (p == NULL) return NULL;
    p++;
    while (*p == ' ' || *p == '"') p++;
    size_t n = 0;
    while (p[n] != '\0' && p[n] != '"' && p[n] != ',' && p[n] != '}' && p[n] != '\n' &&
           n + 1 < cap)
        n++;
    if (n == 0) return NULL;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* Same scenario + seed + binary = same trace hash, on a scenario with a
 * random nemesis (the most randomness there is). */
static void test_trace_hash_repeats(void **state) {
    (void)state;
    char file[LIB_PATH_MAX];
    snprintf(file, sizeof(file), "%s/scenarios/swarm_nemesis.lua", CHAOSLAB_SOURCE_DIR);
    const char *extra[] = {"--seed", "3", "--json", NULL};
    lib_run_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    assert_non_null(a);
    assert_non_null(b);
    lib_run_file(file, extra, a);
    lib_run_file(file, extra, b);
    char ha[128], hb[128];
    const char *pa = lib_trace_hash(a->output, ha, sizeof(ha));
    const char *pb = lib_trace_hash(b->output, hb, sizeof(hb));
    if (pa == NULL) print_message("no trace_hash in:\n%s\n", a->output);
    assert_non_null(pa);
    assert_non_null(pb);
    assert_string_equal(pa, pb);
    assert_int_equal(a->exit_code, b->exit_code);
    /* A different seed must give a different history. */
    const char *other[] = {"--seed", "4", "--json", NULL};
    lib_run_file(file, other, b);
    pb = lib_trace_hash(b->output, hb, sizeof(hb));
    assert_non_null(pb);
    assert_string_not_equal(pa, pb);
    free(a);
    free(b);
}

static void lib_write_tmp(char *path, size_t cap, const char *tag, const char *text) {
    snprintf(path, cap, "%s/chaoslab_lib_%s_%ld.lua", lib_tmpdir(), tag, (long)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Bad input: a misspelt key is a broken scenario (exit 2) naming file:line. */
static void test_broken_scenario_rejected(void **state) {
    (void)state;
    char path[LIB_PATH_MAX];
    lib_write_tmp(path, sizeof(path), "broken",
                  "scenario { name = \"broken\", seeds = \"1..1\" }\n"
                  "cluster { replica = 3 }\n");
    lib_run_t *run = malloc(sizeof(*run));
    assert_non_null(run);
    lib_run_file(path, NULL, run);
    unlink(path);
    if (run->exit_code != 2) print_message("output:\n%s\n", run->output);
    assert_int_equal(run->exit_code, 2);
    assert_non_null(strstr(run->output, ":2:"));
    assert_non_null(strstr(run->output, "replica"));
    free(run);
}

/* A teach file whose weak side is as strong as its strong side cannot show
 * the violation: the lesson is not demonstrated, exit 1. */
static void test_undemonstrated_lesson_fails(void **state) {
    (void)state;
    char path[LIB_PATH_MAX];
    lib_write_tmp(path, sizeof(path), "noteach",
                  "scenario { name = \"noteach\", seeds = \"1..1\" }\n"
                  "workload { producers = { rate = 100 } }\n"
                  "phases { chaos = 2, heal = 1, drain = 3 }\n"
                  "expect { no_loss = true }\n"
                  "teach { lesson = \"nothing\", violation = \"no_loss\",\n"
                  "        weak = { acks = \"quorum\" }, strong = { acks = \"quorum\" } }\n");
    lib_run_t *run = malloc(sizeof(*run));
    assert_non_null(run);
    lib_run_file(path, NULL, run);
    unlink(path);
    if (run->exit_code != 1) print_message("output:\n%s\n", run->output);
    assert_int_equal(run->exit_code, 1);
    free(run);
}

int main(void) {
    lib_collect("scenarios");
    lib_collect("docs/examples");
    const unsigned fixed = 3;
    struct CMUnitTest *tests = calloc(lib_files_count + fixed, sizeof(*tests));
    assert(tests != NULL);
    unsigned n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_broken_scenario_rejected);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_undemonstrated_lesson_fails);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_trace_hash_repeats);
    for (unsigned i = 0; i < lib_files_count; i++) {
        const char *base = strrchr(lib_files[i], '/');
        tests[n].name = base != NULL ? base + 1 : lib_files[i];
        tests[n].test_func = test_library_file;
        tests[n].initial_state = lib_files[i];
        n++;
    }
    /* The library must not be empty: a missing folder is a failure. */
    if (lib_files_count == 0) {
        fprintf(stderr, "no scenarios found under %s\n", CHAOSLAB_SOURCE_DIR);
        free(tests);
        return 1;
    }
    int rc = _cmocka_run_group_tests("scenarios_library", tests, n, NULL, NULL);
    free(tests);
    return rc;
}

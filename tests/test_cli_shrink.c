/* tests/test_cli_shrink.c — `chaoslab shrink` through the built binary: a
 * teach file's weak side shrinks and the written file fails on its own with
 * `chaoslab run` (also with --html and --message); a safe strategy is
 * refused with exit 1; bad usage exits 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/tnet.h"

#define LIB(name) CHAOSLAB_SOURCE_DIR "/scenarios/" name
#define FIXTURE(name) CHAOSLAB_SOURCE_DIR "/tests/scenarios/" name
#define ARGS_MAX 24
#define OUTPUT_MAX (1u << 20)

typedef struct cli_out {
    int code;
    char out[OUTPUT_MAX];
    char err[OUTPUT_MAX];
} cli_out_t;

static char tmpdir[64];

/* Run the binary with NULL-terminated args; capture stdout and stderr. */
static void run_cli(cli_out_t *o, const char *const *args) {
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof out_path, "%s/stdout", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmpdir);
    char *argv[ARGS_MAX];
    argv[0] = (char *)CHAOSLAB_BINARY;
    int n = 1;
    for (; args[n - 1] != NULL && n < ARGS_MAX - 1; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen(out_path, "w", stdout) == NULL || freopen(err_path, "w", stderr) == NULL)
            _exit(99);
        if (chdir(tmpdir) != 0) _exit(99); /* a default chaoslab.db lands here */
        execv(argv[0], argv);
        _exit(98);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    o->code = WEXITSTATUS(status);
    tnet_read_file(out_path, o->out, sizeof o->out);
    tnet_read_file(err_path, o->err, sizeof o->err);
}

static cli_out_t *out_new(void) {
    cli_out_t *o = calloc(1, sizeof *o);
    assert_non_null(o);
    return o;
}

static void test_shrink_then_run(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    char out[128], html[128];
    snprintf(out, sizeof out, "%s/acks.lua", tmpdir);
    snprintf(html, sizeof html, "%s/acks.html", tmpdir);
    run_cli(o, (const char *[]){"shrink", LIB("teach_acks.lua"), "--seed", "1", "--variant",
                                "weak", "-o", out, "--max-trials", "200", NULL});
    if (o->code != 0) print_error("%s\n%s\n", o->out, o->err);
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "no_loss still fails"));
    assert_non_null(strstr(o->out, "before   faults 6"));
    assert_non_null(strstr(o->out, "after    faults "));
    assert_non_null(strstr(o->out, "run it:  chaoslab run"));
    assert_non_null(strstr(o->out, ", same)")); /* the replay repeats the run's hash */
    assert_non_null(strstr(o->err, "shrink: trial 1/200")); /* progress on stderr */
    /* The written file, on its own: fails no_loss (exit 1), with a page. */
    run_cli(o, (const char *[]){"run", out, "--seed", "1", "--db", "none", "--html", html, NULL});
    assert_int_equal(o->code, 1);
    assert_non_null(strstr(o->out, "FAIL no_loss"));
    char *page = calloc(1, 1 << 20);
    assert_non_null(page);
    assert_true(tnet_read_file(html, page, 1 << 20) > 1000);
    assert_non_null(strstr(page, "<html"));
    free(page);
    /* ... and --message follows a lost message through it. */
    const char *id = strstr(o->out, "message 0x");
    assert_non_null(id);
    char mid[32];
    assert_int_equal(sscanf(id, "message %31s", mid), 1);
    run_cli(o, (const char *[]){"run", out, "--seed", "1", "--db", "none", "--message", mid, NULL});
    assert_int_equal(o->code, 1);
    assert_non_null(strstr(o->out, "life of message"));
    free(o);
}

static void test_refusals_and_bad_usage(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    char out[128];
    snprintf(out, sizeof out, "%s/x.lua", tmpdir);
    /* 1: a safe strategy fails nothing */
    run_cli(o, (const char *[]){"shrink", LIB("teach_acks.lua"), "--seed", "1", "--variant",
                                "strong", "-o", out, NULL});
    assert_int_equal(o->code, 1);
    assert_non_null(strstr(o->err, "nothing to shrink"));
    assert_int_not_equal(access(out, F_OK), 0);
    /* 2: bad usage */
    run_cli(o, (const char *[]){"shrink", LIB("teach_acks.lua"), "--seed", "1", "--variant",
                                "weak", "--invariant", "no_los", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "did you mean 'no_loss'"));
    static const char *const budgets[] = {"0", "-1", "abc", "1e9", "nan"};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        run_cli(o, (const char *[]){"shrink", LIB("teach_acks.lua"), "--seed", "1", "--variant",
                                    "weak", "--budget", budgets[i], NULL});
        assert_int_equal(o->code, 2);
        assert_non_null(strstr(o->err, "--budget"));
    }
    run_cli(o, (const char *[]){"shrink", LIB("teach_acks.lua"), "--variant", "weak", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "--seed"));
    run_cli(o, (const char *[]){"shrink", LIB("teach_acks.lua"), "--seed", "1", "--variant",
                                "weak", "-o", "/nonexistent-dir/x.lua", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "cannot write"));
    run_cli(o, (const char *[]){"shrink", LIB("teach_acks.lua"), "--seed", "1", "--variant",
                                "medium", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"shrink", LIB("teach_acks.lua"), "--seed", "1", "--max-trials",
                                "0", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"shrink", "--help", NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "exit codes"));
    free(o);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/chaoslab-cli-shrink-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    tnet_rm_tree(tmpdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shrink_then_run),
        cmocka_unit_test(test_refusals_and_bad_usage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

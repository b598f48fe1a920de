/* tests/test_cli_run.c — `chaoslab run` through the built binary: exit
 * codes, FILE:LINE errors, --json, --db with `chaoslab report list`,
 * determinism across processes, --trace, --jobs. */
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

static void test_exit_codes(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    /* 1: an expectation failed, with the reproduce command */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_crash_all.lua"), "--db", "none", NULL});
    assert_int_equal(o->code, 1);
    assert_non_null(strstr(o->out, "reproduce with: chaoslab run"));
    assert_non_null(strstr(o->out, "--seed 1"));
    /* 0: nothing enforced fails (the actions fixture enforces only no_phantoms) */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seed", "3", "--db",
                                "none", NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "verdict    PASS"));
    assert_non_null(strstr(o->out, "trace      "));
    /* 2: bad usage */
    run_cli(o, (const char *[]){"run", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--seed", "x", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--colour", "blue", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "unknown option '--colour'"));
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--acks", "sometimes", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--variant", "weak", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"run", "/nonexistent/x.lua", "--db", "none", NULL});
    assert_int_equal(o->code, 2);
    free(o);
}

static void expect_broken(cli_out_t *o, const char *file, const char *line) {
    char path[1024], want[1100];
    snprintf(path, sizeof path, "%s", file);
    run_cli(o, (const char *[]){"run", path, "--db", "none", NULL});
    assert_int_equal(o->code, 2);
    snprintf(want, sizeof want, "%s:%s: ", path, line);
    if (strstr(o->err, want) == NULL) print_error("stderr: %s (want %s)\n", o->err, want);
    assert_non_null(strstr(o->err, want));
}

static void test_broken_fixtures_exit_2_with_file_line(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    expect_broken(o, FIXTURE("broken_syntax.lua"), "3");
    expect_broken(o, FIXTURE("broken_unknown_field.lua"), "2");
    assert_non_null(strstr(o->err, "did you mean 'replicas'"));
    expect_broken(o, FIXTURE("broken_wrong_type.lua"), "3");
    expect_broken(o, FIXTURE("broken_impossible.lua"), "2");
    expect_broken(o, FIXTURE("broken_loss.lua"), "2");
    expect_broken(o, FIXTURE("broken_action.lua"), "4");
    expect_broken(o, FIXTURE("broken_action_time.lua"), "4");
    free(o);
}

/* Write o->out to tmpdir/NAME, edit it with `sed -e EDIT` (NULL = as is)
 * and run tests/support/check_run_json.py on it (python3's parser plus the
 * shape docs/reports.md promises); its exit. */
static int json_check_edited(const cli_out_t *o, const char *name, int runs, const char *edit) {
    char path[128], cmd[768];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(o->out, f);
    assert_int_equal(fclose(f), 0);
    if (edit != NULL) {
        snprintf(cmd, sizeof cmd, "sed -i -e '%s' %s", edit, path);
        assert_int_equal(system(cmd), 0);
    }
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/support/check_run_json.py %s %d",
             CHAOSLAB_SOURCE_DIR, path, runs);
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int json_check(const cli_out_t *o, const char *name, int runs) {
    return json_check_edited(o, name, runs, NULL);
}

/* --json: a run is one JSON object with numbers as numbers; a range is one
 * line per run (in seed order, whatever --jobs) and a summary line. */
static void test_json_output(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seed", "2", "--json",
                                "--db", "none", NULL});
    assert_int_equal(o->code, 0);
    assert_int_equal(o->out[0], '{');
    assert_int_equal(json_check(o, "one.json", 1), 0);
    assert_non_null(strstr(o->out, "\"trace_hash\":\""));
    assert_non_null(strstr(o->out, "{\"name\":\"no_loss\",\"enforced\":false,\"passed\":true"));
    assert_non_null(strstr(o->out, "\"lost\":0,"));
    /* a range: three run lines and a summary, the same with --jobs 2 */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seeds", "1..3", "--json",
                                "--db", "none", NULL});
    assert_int_equal(o->code, 0);
    assert_int_equal(json_check(o, "range.jsonl", 3), 0);
    assert_non_null(strstr(o->out, "{\"type\":\"run\",\"seed\":1,"));
    const char *s1 = strstr(o->out, "{\"type\":\"run\",\"seed\":2,");
    assert_non_null(s1);
    char hash1[17];
    const char *h = strstr(s1, "\"trace_hash\":\"");
    assert_non_null(h);
    memcpy(hash1, h + 14, 16);
    hash1[16] = '\0';
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seeds", "1..3", "--json",
                                "--jobs", "2", "--db", "none", NULL});
    assert_int_equal(o->code, 0);
    assert_int_equal(json_check(o, "range2.jsonl", 3), 0);
    s1 = strstr(o->out, "{\"type\":\"run\",\"seed\":2,");
    assert_non_null(s1);
    assert_true(s1 < strstr(o->out, "{\"type\":\"run\",\"seed\":3,"));
    assert_non_null(strstr(s1, hash1));
    assert_non_null(strstr(o->out, "{\"type\":\"summary\",\"sweep\":true,"));
    /* a teach file: both sides per seed; violated names the lesson's loss */
    run_cli(o, (const char *[]){"run", CHAOSLAB_SOURCE_DIR "/scenarios/teach_acks.lua", "--seeds",
                                "1..1", "--json", "--jobs", "2", "--db", "none", NULL});
    assert_int_equal(o->code, 0);
    assert_int_equal(json_check(o, "teach.jsonl", 2), 0);
    assert_non_null(strstr(o->out, "\"variant\":\"weak\",\"verdict\":\"pass\",\"exit_code\":0,"
                                   "\"violated\":[\"no_loss\""));
    assert_non_null(strstr(o->out, "\"demonstrated\":true}"));
    /* a stalled run is still a well-formed line */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seed", "1", "--json",
                                "--max-events", "500", "--db", "none", NULL});
    assert_int_equal(o->code, 1);
    assert_int_equal(json_check(o, "stalled.json", 1), 0);
    assert_non_null(strstr(o->out, "\"verdict\":\"stalled\""));
    /* the checker is not a rubber stamp: figures as "key=value" text, a
     * bitmask for violated, or a missing summary line are refused */
    snprintf(o->out, sizeof o->out, "%s",
             "{\"type\":\"run\",\"seed\":1,\"variant\":\"\",\"verdict\":\"pass\",\"exit_code\":0,"
             "\"violated\":9,\"not_as_expected\":[]}\n");
    assert_int_equal(json_check(o, "bad1.json", 1), 1);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seed", "2", "--json",
                                "--db", "none", NULL});
    assert_int_equal(json_check(o, "good2.json", 1), 0);
    assert_int_equal(json_check_edited(o, "bad2.json", 1,
                                       "s/\"figures\":{[^}]*}/\"figures\":\"lost=0\"/"),
                     1);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seeds", "1..2", "--json",
                                "--db", "none", NULL});
    *strstr(o->out, "{\"type\":\"summary\"") = '\0';
    assert_int_equal(json_check(o, "bad3.jsonl", 2), 1);
    free(o);
}

static const char *hash_of(const char *out, char *buf) {
    const char *h = strstr(out, "trace      ");
    assert_non_null(h);
    memcpy(buf, h + 11, 16);
    buf[16] = '\0';
    return buf;
}

static void test_same_seed_same_hash_across_processes(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    char a[17], b[17], c[17];
    const char *f = FIXTURE("engine_actions.lua");
    run_cli(o, (const char *[]){"run", f, "--seed", "11", "--db", "none", NULL});
    hash_of(o->out, a);
    run_cli(o, (const char *[]){"run", f, "--seed", "11", "--db", "none", NULL});
    hash_of(o->out, b);
    run_cli(o, (const char *[]){"run", f, "--seed", "11", "--db", "none", "--replicas", "5", NULL});
    hash_of(o->out, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_non_null(strstr(o->out, "replicas=5"));
    free(o);
}

static void test_db_and_report_list(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    char db[128];
    snprintf(db, sizeof db, "%s/runs.db", tmpdir);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--seeds", "1..4", "--jobs",
                                "2", "--db", db, "--set", "acks=leader", NULL});
    assert_true(o->code == 0 || o->code == 1);
    assert_non_null(strstr(o->out, "seeds passed"));
    run_cli(o, (const char *[]){"report", "list", "--db", db, NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "engine_calm"));
    assert_non_null(strstr(o->out, "acks=leader"));
    int rows = 0;
    for (const char *p = o->out; (p = strstr(p, "engine_calm")) != NULL; p++) rows++;
    assert_int_equal(rows, 4);
    /* default database in the working directory */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seed", "1", NULL});
    assert_int_equal(o->code, 0);
    char def[128];
    snprintf(def, sizeof def, "%s/chaoslab.db", tmpdir);
    assert_int_equal(access(def, F_OK), 0);
    free(o);
}

static void test_trace_and_teach(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    char trace[128];
    snprintf(trace, sizeof trace, "%s/trace.txt", tmpdir);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seed", "1", "--db", "none",
                                "--trace", trace, NULL});
    assert_int_equal(o->code, 0);
    char *buf = malloc(OUTPUT_MAX);
    assert_non_null(buf);
    tnet_read_file(trace, buf, OUTPUT_MAX);
    assert_non_null(strstr(buf, " n0 host.start incarnation=1"));
    assert_non_null(strstr(buf, " - scenario.log text=\"leader at "));
    assert_non_null(strstr(buf, " - fault.isolate target=n0"));
    assert_non_null(strstr(buf, " raft.leader term="));
    assert_non_null(strstr(buf, " msg.recv from=n"));
    assert_null(strstr(buf, " len=")); /* no raw message lines left */
    free(buf);
    /* decoding only writes the file: the trace hash is the one without it */
    char with[17], without[17];
    hash_of(o->out, with);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seed", "1", "--db", "none",
                                NULL});
    assert_string_equal(with, hash_of(o->out, without));
    /* --trace needs one run */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seeds", "1..2", "--db",
                                "none", "--trace", trace, NULL});
    assert_int_equal(o->code, 2);
    /* teach: both sides per seed and a lesson verdict */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_teach.lua"), "--db", "none", NULL});
    assert_non_null(strstr(o->out, " weak "));
    assert_non_null(strstr(o->out, " strong "));
    assert_non_null(strstr(o->out, "lesson "));
    run_cli(o, (const char *[]){"run", FIXTURE("engine_teach.lua"), "--variant", "weak", "--seed",
                                "1", "--db", "none", NULL});
    assert_int_equal(o->code, 0); /* the weak side shows the loss */
    free(o);
}

/* --trace-format json: every line is one JSON object (python3's parser
 * says so); an unknown format is a usage error. */
static void test_trace_json(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    char trace[128], cmd[512];
    snprintf(trace, sizeof trace, "%s/trace.jsonl", tmpdir);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seed", "1", "--db", "none",
                                "--trace", trace, "--trace-format", "json", NULL});
    assert_int_equal(o->code, 0);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys\n"
             "n=0\n"
             "for l in open(sys.argv[1]):\n"
             "    o=json.loads(l); n+=1\n"
             "    assert isinstance(o[\"t_ns\"],int) and o[\"event\"] and o[\"host\"]\n"
             "assert n>1000, n' %s",
             trace);
    assert_int_equal(system(cmd), 0);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_actions.lua"), "--seed", "1", "--db", "none",
                                "--trace", trace, "--trace-format", "xml", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "--trace-format wants text or json"));
    free(o);
}

/* A failure summary names a lost message and the command for its life;
 * on the weak side of teach_acks that life ends in the overwrite. */
static void test_message_life(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    const char *f = CHAOSLAB_SOURCE_DIR "/scenarios/teach_acks.lua";
    run_cli(o, (const char *[]){"run", f, "--seed", "1", "--variant", "strong", "--acks", "leader",
                                "--db", "none", NULL});
    assert_int_equal(o->code, 1);
    const char *life = strstr(o->out, "its whole life: chaoslab run ");
    assert_non_null(life);
    const char *id = strstr(life, "--message ");
    assert_non_null(id);
    char msg[32];
    assert_int_equal(sscanf(id, "--message %31s", msg), 1);
    assert_true(strncmp(msg, "0x", 2) == 0);
    run_cli(o, (const char *[]){"run", f, "--seed", "1", "--variant", "weak", "--message", msg,
                                "--db", "none", NULL});
    assert_int_equal(o->code, 0);
    char head[96];
    snprintf(head, sizeof head, "life of message %s (seed 1, variant weak)", msg);
    assert_non_null(strstr(o->out, head));
    char pub[64];
    snprintf(pub, sizeof pub, "type=PUBLISH msg=%s ", msg);
    assert_non_null(strstr(o->out, pub));              /* the attempt */
    assert_non_null(strstr(o->out, " log.write "));     /* where it landed */
    assert_non_null(strstr(o->out, "type=CONFIRM"));    /* confirmed */
    assert_non_null(strstr(o->out, "overwrote_focus=")); /* and overwritten */
    assert_non_null(strstr(o->out, "ended: LOST: no replica kept it (entry "));
    assert_true(strstr(o->out, "life of message") < strstr(o->out, "summary of message"));
    /* teach_fsync's weak side: a power loss takes the unsynced entry from
     * every replica, and the life says so */
    const char *fs = CHAOSLAB_SOURCE_DIR "/scenarios/teach_fsync.lua";
    run_cli(o, (const char *[]){"run", fs, "--seed", "1", "--variant", "strong", "--fsync", "never",
                                "--db", "none", NULL});
    assert_int_equal(o->code, 1);
    id = strstr(o->out, "its whole life: chaoslab run ");
    assert_non_null(id);
    id = strstr(id, "--message ");
    assert_non_null(id);
    assert_int_equal(sscanf(id, "--message %31s", msg), 1);
    run_cli(o, (const char *[]){"run", fs, "--seed", "1", "--variant", "weak", "--message", msg,
                                "--db", "none", NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, " host.crash incarnation=1 lost_focus=\"entry "));
    assert_non_null(strstr(o->out, "then LOST in a crash"));
    assert_non_null(strstr(o->out, "ended: LOST: no replica kept it (entry "));
    assert_non_null(strstr(o->out, " not fsynced when n"));
    /* bad ids and more than one run are usage errors */
    run_cli(o, (const char *[]){"run", f, "--seed", "1", "--message", "12x", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"run", f, "--seed", "1", "--message", "0", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"run", f, "--seeds", "1..2", "--variant", "weak", "--message", msg,
                                "--db", "none", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "--message follows one run"));
    run_cli(o, (const char *[]){"run", f, "--seed", "1", "--variant", "weak", "--message", msg,
                                "--json", "--db", "none", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "--message prints text"));
    free(o);
}

static int occurrences(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

/* --html: one self-contained page (no network, no external files) with a
 * lane per broker, fault bands, plots, the invariants and the violations
 * linked to their message's life; Chromium renders it headless. */
/* --html draws a partition as the links it cuts: a one-way cut fills half
 * of a link row (its direction), a client's cut links get rows of their
 * own, and links no fault touched stay empty. */
static void test_html_cut_links(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    char page[128];
    char *html = malloc(OUTPUT_MAX);
    assert_non_null(html);
    snprintf(page, sizeof page, "%s/oneway.html", tmpdir);
    /* one_way(n1 -> n0,n2) at 3s, then one_way(n1,n2 -> n0) at 9s */
    run_cli(o, (const char *[]){"run", CHAOSLAB_SOURCE_DIR "/scenarios/asymmetric_partition.lua",
                                "--seed", "1", "--db", "none", "--html", page, NULL});
    assert_int_equal(o->code, 0);
    tnet_read_file(page, html, OUTPUT_MAX);
    assert_int_equal(occurrences(html, "<rect class=\"cut-link\""), 4);
    assert_int_equal(occurrences(html, "class=\"cut-link\" data-link=\"n1-n0\""), 2);
    assert_int_equal(occurrences(html, "class=\"cut-link\" data-link=\"n1-n2\""), 1);
    assert_int_equal(occurrences(html, "class=\"cut-link\" data-link=\"n2-n0\""), 1);
    assert_int_equal(occurrences(html, "data-link=\"n0-"), 0); /* n0 never sends into a cut */
    assert_non_null(strstr(html, "height=\"5.0\"><title>n1 &#8594; n0 cut, by one_way n1 n0,n2 "));
    /* a weak side passes by failing: the heading names what it broke */
    snprintf(page, sizeof page, "%s/weak.html", tmpdir);
    run_cli(o, (const char *[]){"run", CHAOSLAB_SOURCE_DIR "/scenarios/teach_fsync.lua", "--seed",
                                "1", "--variant", "weak", "--db", "none", "--html", page, NULL});
    assert_int_equal(o->code, 0);
    tnet_read_file(page, html, OUTPUT_MAX);
    assert_non_null(strstr(html, "<span class=\"broke\">&mdash; broke no_loss, as this side must"));
    assert_non_null(
        strstr(html, "<li class=\"expected\"><b>no_loss violated</b> (expected on this side)"));
    /* disk and clock faults: a strip on each broker's lane until the heal */
    snprintf(page, sizeof page, "%s/disk.html", tmpdir);
    run_cli(o, (const char *[]){"run", CHAOSLAB_SOURCE_DIR "/scenarios/teach_slow_disk.lua",
                                "--seed", "1", "--variant", "weak", "--db", "none", "--html", page,
                                NULL});
    tnet_read_file(page, html, OUTPUT_MAX);
    assert_int_equal(occurrences(html, "<rect class=\"disk-band\""), 3);
    assert_non_null(strstr(html, "<title>disk_slow n1 fsync_ns=40000000 2.000s-6.000s</title>"));
    assert_int_equal(occurrences(html, "<rect class=\"clock-band\""), 0);
    assert_int_equal(occurrences(html, "<rect class=\"cut-link\""), 0); /* no partition */
    /* a 2|3 split plus a producer and the consumer cut from the majority */
    snprintf(page, sizeof page, "%s/clients.html", tmpdir);
    run_cli(o, (const char *[]){"run", CHAOSLAB_SOURCE_DIR "/scenarios/clients_on_minority.lua",
                                "--seed", "1", "--db", "none", "--html", page, NULL});
    tnet_read_file(page, html, OUTPUT_MAX);
    /* lanes, broker pairs, client links */
    assert_int_equal(occurrences(html, "<text x=\"2\" y=\""), 5 + 10 + 6);
    assert_int_equal(occurrences(html, "<rect class=\"cut-link\" data-link=\"n"), 6 + 6);
    assert_int_equal(occurrences(html, "data-link=\"n2-n3\""), 0); /* inside the majority */
    assert_int_equal(occurrences(html, "data-link=\"n0-n1\""), 0); /* inside the minority */
    assert_non_null(strstr(html, "class=\"linklabel\">host6-n2</text>"));
    assert_non_null(
        strstr(html, "<title>n2 &#8596; host6 cut, by partition_client host6 n2,n3,n4 "));
    free(html);
    free(o);
}

static void test_html_page(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    const char *f = CHAOSLAB_SOURCE_DIR "/scenarios/teach_acks.lua";
    char page[128];
    snprintf(page, sizeof page, "%s/run.html", tmpdir);
    run_cli(o, (const char *[]){"run", f, "--seed", "1", "--variant", "strong", "--acks", "leader",
                                "--db", "none", "--html", page, NULL});
    assert_int_equal(o->code, 1);
    char *html = malloc(OUTPUT_MAX);
    assert_non_null(html);
    tnet_read_file(page, html, OUTPUT_MAX);
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    assert_int_equal(occurrences(html, "<g class=\"lane\""), 3);
    assert_true(occurrences(html, "class=\"role-leader\"") >= 2);
    /* two isolations of one broker each: a band on that broker's lane only */
    assert_int_equal(occurrences(html, "class=\"fault-band\""), 2);
    assert_non_null(strstr(html, "<rect class=\"fault-band\" data-node=\"n0\""));
    /* and as the links they cut: isolate n0 cuts n0-n1 and n0-n2 (both ways,
     * a full row), then isolate n2 cuts n0-n2 and n1-n2 */
    assert_int_equal(occurrences(html, "<rect class=\"cut-link\""), 4);
    assert_int_equal(occurrences(html, "class=\"cut-link\" data-link=\"n0-n1\""), 1);
    assert_int_equal(occurrences(html, "class=\"cut-link\" data-link=\"n0-n2\""), 2);
    assert_int_equal(occurrences(html, "class=\"cut-link\" data-link=\"n1-n2\""), 1);
    assert_non_null(strstr(html, "<title>n0 &#8596; n1 cut, by isolate n0 "));
    /* what broke, up front: no_loss was not allowed to, ordering is info */
    assert_non_null(strstr(html, "<li class=\"bad\"><b>no_loss violated</b> (NOT as expected)"));
    assert_non_null(strstr(html, "<li class=\"info\"><b>ordering violated</b> (informational)"));
    assert_null(strstr(html, "<span class=\"broke\">"));
    assert_int_equal(occurrences(html, "<text x=\"2\" y=\""), 3 + 3); /* lanes, link rows */
    assert_int_equal(occurrences(html, "<polyline"), 5); /* rates, availability, p50, p99 */
    assert_non_null(strstr(html, "<polyline class=\"p99\" points=\""));
    assert_null(strstr(html, "<polyline class=\"p99\" points=\"\"")); /* not empty */
    assert_non_null(strstr(html, "<table class=\"invariants\">"));
    assert_non_null(strstr(html, "its whole life: chaoslab run "));
    assert_non_null(strstr(html, "class=\"reproduce\">chaoslab run "));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, " src="));
    assert_null(strstr(html, "<link"));
    assert_true(strstr(html, "</html>") != NULL);
    if (access("/usr/bin/chromium", X_OK) == 0) {
        char cmd[1024], dom[128], png[128], log[128];
        snprintf(dom, sizeof dom, "%s/dom.html", tmpdir);
        snprintf(png, sizeof png, "%s/shot.png", tmpdir);
        snprintf(log, sizeof log, "%s/chromium.log", tmpdir);
        snprintf(cmd, sizeof cmd,
                 "cd %s && timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu "
                 "--no-first-run --enable-logging=stderr --dump-dom file://%s > %s 2> %s && "
                 "timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu --no-first-run "
                 "--window-size=1200,900 --screenshot=%s file://%s > /dev/null 2>&1",
                 tmpdir, page, dom, log, png, page);
        assert_int_equal(system(cmd), 0);
        tnet_read_file(dom, html, OUTPUT_MAX);
        assert_int_equal(occurrences(html, "<g class=\"lane\""), 3); /* as the browser parsed it */
        assert_non_null(strstr(html, "fault-band"));
        assert_int_equal(occurrences(html, "class=\"cut-link\" data-link=\"n0-n2\""), 2);
        assert_non_null(strstr(html, "<g class=\"links\">"));
        tnet_read_file(log, html, OUTPUT_MAX);
        assert_null(strstr(html, "CONSOLE")); /* no console errors */
        FILE *shot = fopen(png, "rb");
        assert_non_null(shot);
        fseek(shot, 0, SEEK_END);
        assert_true(ftell(shot) > 20000); /* a blank 1200x900 PNG is a few KB */
        fclose(shot);
    } else {
        fprintf(stderr, "test_html_page: /usr/bin/chromium missing (scripts/setup.sh --test): "
                        "the page was checked as text only\n");
    }
    /* a sweep writes DIR/index.html and a page per run not as expected:
     * the weak side passes (no page), the strong side with acks=leader fails */
    char dir[128], path[192];
    snprintf(dir, sizeof dir, "%s/sweep-html", tmpdir);
    run_cli(o, (const char *[]){"run", f, "--seeds", "1..2", "--db", "none", "--jobs", "2",
                                "--html", dir, "--acks", "leader", NULL});
    assert_int_equal(o->code, 1);
    snprintf(path, sizeof path, "%s/index.html", dir);
    tnet_read_file(path, html, OUTPUT_MAX);
    assert_int_equal(occurrences(html, "<tr class=\"run "), 4); /* 2 seeds x 2 sides */
    assert_int_equal(occurrences(html, "<tr class=\"run ok\""), 2);
    assert_non_null(strstr(html, "<a href=\"seed-1-strong.html\">"));
    assert_null(strstr(html, "seed-1-weak.html"));
    assert_non_null(strstr(html, "no_loss"));
    snprintf(path, sizeof path, "%s/seed-2-strong.html", dir);
    tnet_read_file(path, html, OUTPUT_MAX);
    assert_int_equal(occurrences(html, "<g class=\"lane\""), 3);
    assert_non_null(strstr(html, "--seed 2 --variant strong"));
    snprintf(path, sizeof path, "%s/seed-1-weak.html", dir);
    assert_int_equal(access(path, F_OK), -1);
    free(html);
    /* report show RUN --html: re-simulated from the store, hash checked */
    char db[128], cmd[512];
    snprintf(db, sizeof db, "%s/html-runs.db", tmpdir);
    run_cli(o, (const char *[]){"run", f, "--seed", "2", "--variant", "strong", "--acks", "leader",
                                "--db", db, NULL});
    assert_int_equal(o->code, 1);
    snprintf(path, sizeof path, "%s/stored.html", tmpdir);
    run_cli(o, (const char *[]){"report", "show", "1", "--db", db, "--html", path, NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "run 1 re-simulated (runs are deterministic): trace hash "));
    assert_non_null(strstr(o->out, " matches; page written to "));
    char *stored = malloc(OUTPUT_MAX);
    assert_non_null(stored);
    tnet_read_file(path, stored, OUTPUT_MAX);
    assert_int_equal(occurrences(stored, "<g class=\"lane\""), 3);
    assert_non_null(strstr(stored, "--seed 2 --variant strong --set acks=leader"));
    free(stored);
    run_cli(o, (const char *[]){"report", "show", "9", "--db", db, "--html", path, NULL});
    assert_int_equal(o->code, 1); /* no such run */
    run_cli(o, (const char *[]){"report", "show", "1", "--db", db, "--html", NULL});
    assert_int_equal(o->code, 2);
    /* a stored hash the replay does not reproduce is reported, exit 1 */
    snprintf(cmd, sizeof cmd, "sqlite3 %s \"UPDATE runs SET trace_hash='0123456789abcdef'\"", db);
    assert_int_equal(system(cmd), 0);
    run_cli(o, (const char *[]){"report", "show", "1", "--db", db, "--html", path, NULL});
    assert_int_equal(o->code, 1);
    assert_non_null(strstr(o->err, "but it was stored with 0123456789abcdef"));
    /* unwritable: a file for one run, a directory for a range */
    run_cli(o, (const char *[]){"run", f, "--seed", "1", "--variant", "weak", "--db", "none",
                                "--html", "/nonexistent-dir/x.html", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"run", f, "--seeds", "1..2", "--db", "none", "--html",
                                "/nonexistent-dir/sub", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "a range writes a directory"));
    free(o);
}

/* Lines of `text` containing `needle`. */
static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

/* A run over its event budget: verdict stalled, exit 1, the reproduce line
 * (with the budget), stored in the database; a sweep records every stalled
 * seed and goes on, with one worker or two. */
static void test_stalled_runs_and_sweeps(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    char db[128];
    snprintf(db, sizeof db, "%s/stall.db", tmpdir);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--seed", "1", "--db", db,
                                "--max-events", "3000", NULL});
    assert_int_equal(o->code, 1);
    assert_non_null(strstr(o->out, "stalled    the event budget (3000 events) ran out"));
    assert_non_null(strstr(o->out, "verdict    STALLED"));
    assert_non_null(strstr(o->out, "reproduce with: chaoslab run "));
    assert_non_null(strstr(o->out, "engine_calm.lua --seed 1 --max-events 3000"));
    run_cli(o, (const char *[]){"report", "list", "--db", db, "--verdict", "stalled", NULL});
    assert_int_equal(o->code, 0);
    assert_int_equal(count_of(o->out, "engine_calm"), 1);
    run_cli(o, (const char *[]){"report", "show", "1", "--db", db, NULL});
    assert_non_null(strstr(o->out, "verdict     stalled (exit code 1)"));
    assert_non_null(strstr(o->out, "--max-events 3000"));
    assert_non_null(strstr(o->out, "liveness"));
    for (int jobs = 1; jobs <= 2; jobs++) {
        const char *j = jobs == 1 ? "1" : "2";
        run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--seeds", "1..3",
                                    "--jobs", j, "--db", db, "--max-events", "3000", NULL});
        assert_int_equal(o->code, 1);
        assert_int_equal(count_of(o->out, "STALLED"), 3);
        assert_int_equal(count_of(o->out, "reproduce with: "), 3);
        assert_non_null(strstr(o->out, "stalled            3/3 seeds"));
    }
    run_cli(o, (const char *[]){"report", "list", "--db", db, "--verdict", "stalled", NULL});
    assert_int_equal(count_of(o->out, "engine_calm"), 7);
    /* bad budgets are usage errors */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--max-events", "0", NULL});
    assert_int_equal(o->code, 2);
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--max-wall", "soon", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "--max-wall"));
    free(o);
}

/* Rows of the first `report compare` table for engine_calm. */
static int compare_groups(cli_out_t *o, const char *db) {
    run_cli(o, (const char *[]){"report", "compare", "--db", db, NULL});
    assert_int_equal(o->code, 0);
    char *end = strstr(o->out, "invariants by strategy");
    assert_non_null(end);
    *end = '\0';
    return count_of(o->out, "\n  engine_calm ");
}

/* A run's identity: a changed strategy key that was not printed before
 * (check_quorum), or an edited scenario file under the same name, is a
 * group of its own in `report compare`. */
static void test_compare_keeps_identities_apart(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    char db[128], copy[128];
    snprintf(db, sizeof db, "%s/ident.db", tmpdir);
    snprintf(copy, sizeof copy, "%s/engine_calm.lua", tmpdir);
    char *text = malloc(OUTPUT_MAX);
    assert_non_null(text);
    tnet_read_file(FIXTURE("engine_calm.lua"), text, OUTPUT_MAX);
    FILE *f = fopen(copy, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    run_cli(o, (const char *[]){"run", copy, "--seed", "1", "--db", db, NULL});
    assert_int_equal(o->code, 0);
    run_cli(o, (const char *[]){"run", copy, "--seed", "2", "--db", db, NULL});
    assert_int_equal(compare_groups(o, db), 1);
    run_cli(o, (const char *[]){"run", copy, "--seed", "1", "--db", db, "--set",
                                "check_quorum=false", NULL});
    assert_int_equal(compare_groups(o, db), 2);
    assert_non_null(strstr(o->out, "check_quorum=off"));
    assert_non_null(strstr(o->out, "check_quorum=on"));
    f = fopen(copy, "a");
    assert_non_null(f);
    fputs("-- edited: same name, different content\n", f);
    fclose(f);
    run_cli(o, (const char *[]){"run", copy, "--seed", "1", "--db", db, NULL});
    assert_int_equal(compare_groups(o, db), 3);
    /* every key with its default is stored, and the binary's version */
    run_cli(o, (const char *[]){"report", "show", "1", "--db", db, NULL});
    assert_non_null(strstr(o->out, "pre_vote "));
    assert_non_null(strstr(o->out, "election_timeout_ms "));
    assert_non_null(strstr(o->out, "workload.rate "));
    assert_non_null(strstr(o->out, "phases.chaos_s "));
    assert_non_null(strstr(o->out, "binary 0.1.0 ("));
    char stored[256];
    const char *b = strstr(o->out, "binary ") + 7;
    snprintf(stored, sizeof stored, "%.*s", (int)strcspn(b, "\n"), b);
    run_cli(o, (const char *[]){"--version", NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, stored)); /* what runs store is what --version says */
    free(text);
    free(o);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/chaoslab-cli-run-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    tnet_rm_tree(tmpdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_broken_fixtures_exit_2_with_file_line),
        cmocka_unit_test(test_json_output),
        cmocka_unit_test(test_same_seed_same_hash_across_processes),
        cmocka_unit_test(test_db_and_report_list),
        cmocka_unit_test(test_trace_and_teach),
        cmocka_unit_test(test_trace_json),
        cmocka_unit_test(test_html_cut_links),
        cmocka_unit_test(test_message_life),
        cmocka_unit_test(test_html_page),
        cmocka_unit_test(test_stalled_runs_and_sweeps),
        cmocka_unit_test(test_compare_keeps_identities_apart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

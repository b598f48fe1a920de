/* cli/cmd_report.c — `chaoslab report list|show|compare`: the queries of
 * reports/report_cli.c over the SQLite report store, and `report show RUN
 * --html FILE`, which re-simulates the stored run (runs are deterministic)
 * to draw its page and checks that the trace hash matches. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "reports/report.h"

#define REPORT_HTML_WORDS_MAX 64u /* words of a stored reproduce command */
#define REPORT_HTML_CMD_MAX 2048u

/* The `"trace_hash":"..."` of a run's --json output, or "" if absent. */
static void report_html_hash_of(const char *json, char out[17]) {
    out[0] = '\0';
    const char *p = json != NULL ? strstr(json, "\"trace_hash\":\"") : NULL;
    if (p != NULL && strlen(p + 14) >= 16) {
        memcpy(out, p + 14, 16);
        out[16] = '\0';
    }
}

static int report_html(const char *run, const char *db_path, const char *html) {
    long long id = 0;
    char *end = NULL;
    id = strtoll(run != NULL ? run : "", &end, 10);
    if (run == NULL || end == run || *end != '\0' || id <= 0)
        return cli_usage_error("report", "show --html needs RUN, a positive run id");
    report_db_t *db = NULL;
    char err[REPORT_ERRMSG_SIZE_MAX];
    if (report_db_open_existing(db_path, &db, err, sizeof err) != 0) {
        fprintf(stderr, "chaoslab report show: %s: %s\n", db_path, err);
        return CLI_EXIT_USAGE;
    }
    char cmd[REPORT_HTML_CMD_MAX], stored[17];
    const int rc = report_query_replay(db, (int64_t)id, cmd, sizeof cmd, stored);
    if (rc != 0) fprintf(stderr, "chaoslab report show: %s\n", report_db_errmsg(db));
    report_db_close(db);
    if (rc != 0) return rc == REPORT_ENOENT ? 1 : CLI_EXIT_USAGE;
    /* "chaoslab run FILE --seed N ...": its words (paths with spaces are
     * not supported: the stored command is not quoted). */
    char *argv[REPORT_HTML_WORDS_MAX + 8];
    int argc = 0;
    char *save = NULL;
    for (char *w = strtok_r(cmd, " ", &save); w != NULL && argc < (int)REPORT_HTML_WORDS_MAX;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    if (argc < 3 || strcmp(argv[0], "chaoslab") != 0 || strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "chaoslab report show: run %lld has no reproduce command to replay\n", id);
        return CLI_EXIT_USAGE;
    }
    char **run_argv = argv + 1; /* "run FILE ..." */
    int run_argc = argc - 1;
    run_argv[run_argc++] = "--db";
    run_argv[run_argc++] = "none";
    run_argv[run_argc++] = "--json";
    run_argv[run_argc++] = "--html";
    run_argv[run_argc++] = (char *)html;
    run_argv[run_argc] = NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out == NULL) return CLI_EXIT_USAGE;
    const int code = cli_cmd_run_to(run_argc, run_argv, out);
    fclose(out);
    char replayed[17];
    report_html_hash_of(text, replayed);
    free(text);
    if (code == CLI_EXIT_USAGE || replayed[0] == '\0') {
        fprintf(stderr, "chaoslab report show: run %lld could not be re-simulated\n", id);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(replayed, stored) != 0) {
        fprintf(stderr, "chaoslab report show: run %lld re-simulated with trace hash %s, but it "
                        "was stored with %s (another binary or an edited scenario): %s shows "
                        "the new run\n", id, replayed, stored, html);
        return 1;
    }
    printf("run %lld re-simulated (runs are deterministic): trace hash %s matches; page "
           "written to %s\n", id, replayed, html);
    return 0;
}

int cli_cmd_report(int argc, char **argv) {
    /* `show RUN --html FILE [--db FILE]` is handled here: it needs the
     * simulator, which the report library does not link. */
    const char *html = NULL, *db = "chaoslab.db", *run = NULL;
    bool show = argc > 1 && strcmp(argv[1], "show") == 0;
    for (int i = 2; show && i < argc; i++) {
        if (strcmp(argv[i], "--html") == 0 && i + 1 < argc) html = argv[++i];
        else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) db = argv[++i];
        else if (argv[i][0] != '-' && run == NULL) run = argv[i];
        else if (strcmp(argv[i], "--html") == 0)
            return cli_usage_error("report", "--html needs a file name");
    }
    if (show && html != NULL) return report_html(run, db, html);
    return report_cli_main(argc, argv, stdout, stderr);
}

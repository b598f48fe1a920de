/*
 * reports/report_cli.c — `chaoslab report list|show RUN|compare`.
 *
 * Arguments are parsed by hand (no getopt: its optind/optarg globals would
 * make report_cli_main non-reentrant, and tests call it many times in one
 * process). Both `--opt VALUE` and `--opt=VALUE` are accepted.
 *
 * Exit codes: 0 success; 1 `show` of a run id that does not exist; 2 bad
 * usage, a missing database file, or any database error.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reports/report.h"

#define REPORT_CLI_DB_DEFAULT "chaoslab.db"
#define REPORT_CLI_ARGS_MAX 64 /* more arguments than this is a usage error */

static const char report_cli_usage[] =
    "usage: chaoslab report list [--scenario S] [--verdict V]\n"
    "                            [--limit N] [--db FILE] [--json]\n"
    "       chaoslab report show RUN [--db FILE] [--json]\n"
    "       chaoslab report show RUN [--db FILE] --html OUT.html\n"
    "       chaoslab report compare [--scenario S] [--db FILE] [--json]\n"
    "       chaoslab report compare --baseline OLD.db [--db NEW.db] [--scenario S]\n"
    "                   [--tolerance R] [--latency-tolerance F] [--match config|variant]\n"
    "       chaoslab report merge OUT.db IN.db...\n"
    "\n"
    "  list     the most recent runs, newest first (default limit 20)\n"
    "  show     everything stored about run RUN (an id from `list`)\n"
    "  compare  pass rates per strategy and per invariant across seeds\n"
    "  merge    copy the runs of IN.db files (e.g. --shard databases) into\n"
    "           OUT.db (created if missing); a run already there (same\n"
    "           scenario, file hash, config, binary, seed, verdict and trace\n"
    "           hash) is skipped, so merging a file twice adds nothing\n"
    "\n"
    "  --db FILE       report database (default chaoslab.db)\n"
    "  --scenario S    only runs of scenario S (its name or its path)\n"
    "  --verdict V     only runs whose verdict is V (pass, fail, stalled,\n"
    "                  invariant, error)\n"
    "  --limit N       print at most N runs (1..100000)\n"
    "  --json          one JSON document instead of tables\n"
    "  --baseline OLD  compare: exit 1 when a pass rate, availability or confirm\n"
    "                  latency p50/p99 of --db regressed against OLD (groups paired\n"
    "                  by scenario file hash and whole configuration)\n"
    "  --tolerance R   allowed absolute drop of a rate (default 0)\n"
    "  --latency-tolerance F  allowed relative latency growth (default 0.10)\n"
    "  --match variant pair by scenario file and teach variant instead of the\n"
    "                  whole configuration, printing the config differences\n"
    "  --html OUT.html re-simulate run RUN (runs are deterministic) and write its\n"
    "                  page (docs/trace.md); exit 1 if the trace hash differs\n"
    "\n"
    "exit status: 0 ok, 1 no such run or (--baseline) a regression, 2 bad\n"
    "usage or database error\n";

enum {
    REPORT_CLI_OPT_SCENARIO = 1 << 0,
    REPORT_CLI_OPT_VERDICT = 1 << 1,
    REPORT_CLI_OPT_LIMIT = 1 << 2,
    REPORT_CLI_OPT_RUN = 1 << 3, /* one positional argument */
    REPORT_CLI_OPT_BASELINE = 1 << 4,
};

typedef struct report_cli_opts {
    const char *db;
    const char *scenario;
    const char *verdict;
    const char *limit;
    const char *run;
    const char *baseline;
    const char *tolerance;
    const char *latency_tolerance;
    const char *match;
    int json;
    int help;
} report_cli_opts_t;

static int report_cli_bad(FILE *err, const char *sub, const char *what,
                          const char *arg)
{
    assert(err != NULL && what != NULL);
    fprintf(err, "chaoslab report%s%s: %s%s%s\n", sub ? " " : "",
            sub ? sub : "", what, arg ? " " : "", arg ? arg : "");
    fputs("try `chaoslab report --help`\n", err);
    return 2;
}

/* `--name VALUE` or `--name=VALUE`: returns 1 and sets *value when argv[*i]
 * is option `name` (advancing *i past a separate value), 0 when it is some
 * other argument, -1 when the value is missing. */
static int report_cli_value(int argc, char **argv, int *i, const char *name,
                            const char **value)
{
    assert(argv != NULL && i != NULL);
    assert(name != NULL && value != NULL);
    const char *arg = argv[*i];
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0) {
        return 0;
    }
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0') {
        return 0;
    }
    if (*i + 1 >= argc) {
        return -1;
    }
    *i += 1;
    *value = argv[*i];
    return 1;
}

/* Parse argv[2..] for subcommand `sub` allowing the options in `allowed`.
 * Returns 0 or an exit code (2) after printing the problem. */
static int report_cli_parse(int argc, char **argv, const char *sub,
                            unsigned allowed, report_cli_opts_t *o, FILE *err)
{
    assert(argc >= 2 && o != NULL);
    assert(sub != NULL);
    memset(o, 0, sizeof *o);
    o->db = REPORT_CLI_DB_DEFAULT;
    if (argc > REPORT_CLI_ARGS_MAX) {
        return report_cli_bad(err, sub, "too many arguments", NULL);
    }
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        int found = 0;
        static const struct { const char *name; unsigned flag; } valued[] = {
            {"--db", 0}, {"--scenario", REPORT_CLI_OPT_SCENARIO},
            {"--verdict", REPORT_CLI_OPT_VERDICT},
            {"--limit", REPORT_CLI_OPT_LIMIT},
            {"--baseline", REPORT_CLI_OPT_BASELINE},
            {"--tolerance", REPORT_CLI_OPT_BASELINE},
            {"--latency-tolerance", REPORT_CLI_OPT_BASELINE},
            {"--match", REPORT_CLI_OPT_BASELINE}};
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
            found = report_cli_value(argc, argv, &i, valued[k].name, &value);
            if (found < 0) {
                return report_cli_bad(err, sub, "missing value for", arg);
            }
            if (found > 0 && valued[k].flag != 0 &&
                (allowed & valued[k].flag) == 0) {
                return report_cli_bad(err, sub, "unknown option", arg);
            }
            if (found > 0) {
                const char **slot[] = {&o->db, &o->scenario, &o->verdict,
                                       &o->limit, &o->baseline, &o->tolerance,
                                       &o->latency_tolerance, &o->match};
                *slot[k] = value;
                break;
            }
        }
        if (found > 0) {
            continue;
        }
        if (strcmp(arg, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            o->help = 1;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return report_cli_bad(err, sub, "unknown option", arg);
        } else if ((allowed & REPORT_CLI_OPT_RUN) && o->run == NULL) {
            o->run = arg;
        } else {
            return report_cli_bad(err, sub, "unexpected argument", arg);
        }
    }
    if (o->db[0] == '\0') {
        return report_cli_bad(err, sub, "empty --db", NULL);
    }
    return 0;
}

/* Decimal in [min, max]; anything else (sign, spaces, junk) is refused. */
static int report_cli_number(const char *s, long long min, long long max,
                             long long *out)
{
    assert(out != NULL);
    assert(min <= max);
    if (s == NULL || s[0] < '0' || s[0] > '9') {
        return -1;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int report_cli_open(const report_cli_opts_t *o, report_db_t **db,
                           FILE *err)
{
    assert(o != NULL && db != NULL);
    char msg[REPORT_ERRMSG_SIZE_MAX];
    int rc = report_db_open_existing(o->db, db, msg, sizeof msg);
    if (rc == REPORT_ENOENT) {
        fprintf(err, "chaoslab report: %s\n(store runs there with "
                "`chaoslab run SCENARIO.lua --db %s`, or pick another file "
                "with --db)\n", msg, o->db);
        return 2;
    }
    if (rc != 0) {
        fprintf(err, "chaoslab report: %s: %s\n", o->db, msg);
        return 2;
    }
    return 0;
}

static int report_cli_run(const char *sub, const report_cli_opts_t *o,
                          FILE *out, FILE *err)
{
    assert(sub != NULL && o != NULL);
    assert(out != NULL && err != NULL);
    report_list_opts_t list = {o->scenario, o->verdict,
                               REPORT_LIST_LIMIT_DEFAULT, o->json};
    long long number = 0;
    if (o->limit != NULL) {
        if (report_cli_number(o->limit, 1, REPORT_LIST_LIMIT_MAX,
                              &number) != 0) {
            return report_cli_bad(err, sub, "--limit must be 1..100000, not",
                                  o->limit);
        }
        list.limit = (size_t)number;
    }
    if (o->verdict != NULL && strcmp(o->verdict, "pass") != 0 &&
        strcmp(o->verdict, "fail") != 0 && strcmp(o->verdict, "error") != 0 &&
        strcmp(o->verdict, "stalled") != 0 &&
        strcmp(o->verdict, "invariant") != 0) {
        return report_cli_bad(err, sub, "--verdict must be pass, fail, "
                              "stalled, invariant or error, not", o->verdict);
    }
    int is_show = strcmp(sub, "show") == 0;
    if (is_show && o->run == NULL) {
        return report_cli_bad(err, sub, "missing RUN (a run id from "
                              "`chaoslab report list`)", NULL);
    }
    if (is_show && report_cli_number(o->run, 1, INT64_MAX, &number) != 0) {
        return report_cli_bad(err, sub, "RUN must be a positive run id, not",
                              o->run);
    }
    report_db_t *db = NULL;
    int code = report_cli_open(o, &db, err);
    if (code != 0) {
        return code;
    }
    int rc = is_show ? report_query_show(db, (int64_t)number, o->json, out)
             : strcmp(sub, "list") == 0
                 ? report_query_list(db, &list, out)
                 : report_query_compare(db, o->scenario, o->json, out);
    if (rc != 0) {
        fprintf(err, "chaoslab report %s: %s\n", sub, report_db_errmsg(db));
    }
    report_db_close(db);
    return rc == 0 ? 0 : rc == REPORT_ENOENT && is_show ? 1 : 2;
}

/* A number in [min, max] (strtod, finite, nothing after it). */
static int report_cli_double(const char *s, double min, double max,
                             double *out)
{
    if (s == NULL || s[0] == '\0' || s[0] == ' ') {
        return -1;
    }
    char *end = NULL;
    double v = strtod(s, &end);
    if (*end != '\0' || !(v >= min && v <= max)) {
        return -1;
    }
    *out = v;
    return 0;
}

/* `report compare --baseline OLD.db`: exit 1 on any regression. */
static int report_cli_baseline(const report_cli_opts_t *o, FILE *out,
                               FILE *err)
{
    report_baseline_opts_t b = {o->baseline, o->scenario,
                                REPORT_TOLERANCE_DEFAULT,
                                REPORT_LATENCY_TOLERANCE_DEFAULT, 0};
    if (o->json) {
        return report_cli_bad(err, "compare", "--baseline prints text only; "
                              "drop --json", NULL);
    }
    if (o->tolerance != NULL &&
        report_cli_double(o->tolerance, 0, 1, &b.tolerance) != 0) {
        return report_cli_bad(err, "compare", "--tolerance must be a rate in "
                              "[0, 1], not", o->tolerance);
    }
    if (o->latency_tolerance != NULL &&
        report_cli_double(o->latency_tolerance, 0, 1e6,
                          &b.latency_tolerance) != 0) {
        return report_cli_bad(err, "compare", "--latency-tolerance must be a "
                              "relative growth >= 0 (0.1 = 10%), not",
                              o->latency_tolerance);
    }
    if (o->match != NULL && strcmp(o->match, "config") != 0 &&
        strcmp(o->match, "variant") != 0) {
        return report_cli_bad(err, "compare", "--match must be config or "
                              "variant, not", o->match);
    }
    b.match_variant = o->match != NULL && strcmp(o->match, "variant") == 0;
    if (access(o->baseline, R_OK) != 0) {
        fprintf(err, "chaoslab report compare: --baseline %s: %s\n",
                o->baseline, strerror(errno));
        return 2;
    }
    report_db_t *db = NULL;
    int code = report_cli_open(o, &db, err);
    if (code != 0) {
        return code;
    }
    int regressions = 0;
    int rc = report_query_baseline(db, &b, out, &regressions);
    if (rc != 0) {
        fprintf(err, "chaoslab report compare: %s\n", report_db_errmsg(db));
    }
    report_db_close(db);
    return rc != 0 ? 2 : regressions > 0 ? 1 : 0;
}

/* `report merge OUT.db IN.db...`: every input is checked before any is
 * merged; each input is then one transaction. */
static int report_cli_merge(int argc, char **argv, FILE *out, FILE *err)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(report_cli_usage, out);
            return 0;
        }
        if (argv[i][0] == '-' || argv[i][0] == '\0') {
            return report_cli_bad(err, "merge", "unknown option", argv[i]);
        }
    }
    if (argc < 4) {
        return report_cli_bad(err, "merge", "wants OUT.db and at least one "
                              "IN.db", NULL);
    }
    for (int i = 3; i < argc; i++) {
        if (access(argv[i], R_OK) != 0) {
            fprintf(err, "chaoslab report merge: %s: %s\n", argv[i],
                    strerror(errno));
            return 2;
        }
    }
    report_db_t *db = NULL;
    char msg[REPORT_ERRMSG_SIZE_MAX];
    if (report_db_open(argv[2], &db, msg, sizeof msg) != 0) {
        fprintf(err, "chaoslab report merge: %s: %s\n", argv[2], msg);
        return 2;
    }
    int rc = 0;
    for (int i = 3; i < argc && rc == 0; i++) {
        rc = report_db_merge_check(db, argv[i]);
    }
    uint64_t added = 0, skipped = 0, total = 0;
    for (int i = 3; i < argc && rc == 0; i++) {
        rc = report_db_merge(db, argv[i], &added, &skipped);
        if (rc == 0) {
            fprintf(out, "%s: %llu runs added, %llu already in %s\n", argv[i],
                    (unsigned long long)added, (unsigned long long)skipped,
                    argv[2]);
            total += added;
        }
    }
    if (rc != 0) {
        fprintf(err, "chaoslab report merge: %s\n", report_db_errmsg(db));
    } else {
        fprintf(out, "%s: %llu runs added in all\n", argv[2],
                (unsigned long long)total);
    }
    report_db_close(db);
    return rc == 0 ? 0 : 2;
}

int report_cli_main(int argc, char **argv, FILE *out, FILE *err)
{
    assert(out != NULL && err != NULL);
    assert(argc >= 0);
    if (argc < 2 || argv == NULL || argv[1] == NULL) {
        fputs(report_cli_usage, err);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
        strcmp(sub, "help") == 0) {
        fputs(report_cli_usage, out);
        return 0;
    }
    if (strcmp(sub, "merge") == 0) {
        return report_cli_merge(argc, argv, out, err);
    }
    unsigned allowed = 0;
    if (strcmp(sub, "list") == 0) {
        allowed = REPORT_CLI_OPT_SCENARIO | REPORT_CLI_OPT_VERDICT |
                  REPORT_CLI_OPT_LIMIT;
    } else if (strcmp(sub, "show") == 0) {
        allowed = REPORT_CLI_OPT_RUN;
    } else if (strcmp(sub, "compare") == 0) {
        allowed = REPORT_CLI_OPT_SCENARIO | REPORT_CLI_OPT_BASELINE;
    } else {
        fprintf(err, "chaoslab report: unknown subcommand '%s'\n\n", sub);
        fputs(report_cli_usage, err);
        return 2;
    }
    report_cli_opts_t opts;
    int code = report_cli_parse(argc, argv, sub, allowed, &opts, err);
    if (code != 0) {
        return code;
    }
    if (opts.help) {
        fputs(report_cli_usage, out);
        return 0;
    }
    if (opts.baseline == NULL && (opts.tolerance != NULL ||
                                  opts.latency_tolerance != NULL ||
                                  opts.match != NULL)) {
        return report_cli_bad(err, sub, "--tolerance, --latency-tolerance "
                              "and --match need --baseline", NULL);
    }
    if (opts.baseline != NULL) {
        return report_cli_baseline(&opts, out, err);
    }
    return report_cli_run(sub, &opts, out, err);
}

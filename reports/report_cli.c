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

#include "reports/report.h"

#define REPORT_CLI_DB_DEFAULT "chaoslab.db"
#define REPORT_CLI_ARGS_MAX 64 /* more arguments than this is a usage error */

static const char report_cli_usage[] =
    "usage: chaoslab report list [--scenario S] [--verdict V]\n"
    "                            [--limit N] [--db FILE] [--json]\n"
    "       chaoslab report show RUN [--db FILE] [--json]\n"
    "       chaoslab report show RUN [--db FILE] --html OUT.html\n"
    "       chaoslab report compare [--scenario S] [--db FILE] [--json]\n"
    "\n"
    "  list     the most recent runs, newest first (default limit 20)\n"
    "  show     everything stored about run RUN (an id from `list`)\n"
    "  compare  pass rates per strategy and per invariant across seeds\n"
    "\n"
    "  --db FILE       report database (default chaoslab.db)\n"
    "  --scenario S    only runs of scenario S (its name or its path)\n"
    "  --verdict V     only runs whose verdict is V (pass, fail, stalled,\n"
    "                  invariant, error)\n"
    "  --limit N       print at most N runs (1..100000)\n"
    "  --json          one JSON document instead of tables\n"
    "  --html OUT.html re-simulate run RUN (runs are deterministic) and write its\n"
    "                  page (docs/trace.md); exit 1 if the trace hash differs\n"
    "\n"
    "exit status: 0 ok, 1 no such run, 2 bad usage or database error\n";

enum {
    REPORT_CLI_OPT_SCENARIO = 1 << 0,
    REPORT_CLI_OPT_VERDICT = 1 << 1,
    REPORT_CLI_OPT_LIMIT = 1 << 2,
    REPORT_CLI_OPT_RUN = 1 << 3, /* one positional argument */
};

typedef struct report_cli_opts {
    const char *db;
    const char *scenario;
    const char *verdict;
    const char *limit;
    const char *run;
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
            {"--limit", REPORT_CLI_OPT_LIMIT}};
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
                                       &o->limit};
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
    unsigned allowed = 0;
    if (strcmp(sub, "list") == 0) {
        allowed = REPORT_CLI_OPT_SCENARIO | REPORT_CLI_OPT_VERDICT |
                  REPORT_CLI_OPT_LIMIT;
    } else if (strcmp(sub, "show") == 0) {
        allowed = REPORT_CLI_OPT_RUN;
    } else if (strcmp(sub, "compare") == 0) {
        allowed = REPORT_CLI_OPT_SCENARIO;
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
    return report_cli_run(sub, &opts, out, err);
}

/* scenarios/sweep.c — runs, seed ranges, worker processes, teach verdicts. */
#include "scenarios/sweep.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scenarios/engine.h"
#include "scenarios/junit.h"
#include "scenarios/html.h"

#define SWEEP__TRACE_BUFFER_BYTES (1u << 16)

/* What a worker tells the parent about one run (one atomic pipe write). */
typedef struct sweep__brief {
    uint64_t seed, trace_hash, sim_time_ns, wall_time_ns, events;
    uint32_t item;
    uint16_t violated; /* bit per SCN_INV_*: the invariant did not hold */
    uint16_t failed;   /* bit per SCN_INV_*: not as expected */
    uint8_t variant, exit_code, done, verdict;
    /* key figures and the stop text, for --junit */
    uint64_t published, confirmed, lost;
    double availability; /* < 0 = not measured */
    char why[SCN_JUNIT_WHY_MAX];
    uint8_t has_page; /* --html DIR: this run's page was written */
    /* --json with workers: where the worker wrote this run's JSON line in
     * its part file (the parent prints the lines in seed order). */
    uint64_t json_offset;
    uint32_t json_len;
} sweep__brief_t;

/* Workers write briefs to one pipe: only writes of up to PIPE_BUF bytes
 * are atomic, so a brief must fit. */
_Static_assert(sizeof(sweep__brief_t) <= PIPE_BUF, "a brief must be one atomic pipe write");

typedef struct sweep__plan {
    const scn_sweep_opts_t *o;
    uint64_t first, last;            /* the seed range before --shard */
    uint64_t seed0, stride, seeds;   /* this shard's seeds: seed0 + k*stride, k < seeds */
    scn_variant_t variants[2];
    uint32_t variants_count;
    uint64_t items;
    bool teach;
    char lesson[SCN_TEXT_MAX];
    char name[SCN_NAME_MAX];
    char violation[SCN_KEY_MAX];
    char strategies[2][SCN_STRATEGY_TEXT_MAX];
    sweep__brief_t *briefs;
    bool progress;
    /* --json on a range: each run's line goes to json_sink as it ends:
     * stdout in this process, a worker's own part file (one per worker,
     * json_parts[k]) under --jobs. */
    FILE *json_sink;
    FILE *json_parts[SCN_JOBS_MAX];
    uint32_t json_parts_count;
} sweep__plan_t;

static void sweep__item(const sweep__plan_t *p, uint64_t item, uint64_t *seed, scn_variant_t *v) {
    assert(item < p->items);
    *seed = p->seed0 + (item / p->variants_count) * p->stride;
    *v = p->variants[item % p->variants_count];
}

/* What --junit reports beyond the verdict. */
static void sweep__brief_figures(const scn_result_t *r, sweep__brief_t *b) {
    b->published = r->published;
    b->confirmed = r->confirmed;
    b->availability = -1;
    if (r->judged) {
        const double lost = check_figure(&r->checks[CHECK_NO_LOSS], "lost");
        b->lost = lost > 0 ? (uint64_t)lost : 0;
        b->availability = check_figure(&r->checks[CHECK_AVAILABILITY], "availability");
    }
    const char *why = r->exit_code == 2 ? r->err : r->stop_text;
    snprintf(b->why, sizeof b->why, "%s", why);
}

static int sweep__write_page(const char *dir, uint64_t seed, scn_variant_t v, const char *page,
                             size_t size, FILE *err) {
    char name[64], path[4096];
    scn_html_page_name(seed, v, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(page, 1, size, f) != size || fclose(f) != 0) {
        fprintf(err, "chaoslab run: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* --html DIR: the index of a sweep, one row per run. */
static int sweep__write_index(const sweep__plan_t *p) {
    scn_html_row_t *rows = calloc(p->items, sizeof *rows);
    if (rows == NULL) return -1;
    for (uint64_t i = 0; i < p->items; i++) {
        const sweep__brief_t *b = &p->briefs[i];
        rows[i] = (scn_html_row_t){.seed = b->seed, .variant = (scn_variant_t)b->variant,
                                   .verdict = (report_verdict_t)b->verdict,
                                   .exit_code = b->done ? b->exit_code : 2, .violated = b->violated,
                                   .events = b->events, .sim_time_ns = b->sim_time_ns,
                                   .trace_hash = b->trace_hash, .has_page = b->has_page != 0};
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/index.html", p->o->html_path);
    FILE *f = fopen(path, "w");
    int rc = f != NULL && scn_html_index(f, p->o->path, rows, p->items) == 0 ? 0 : -1;
    if (f != NULL && fclose(f) != 0) rc = -1;
    if (rc != 0) fprintf(p->o->err, "chaoslab run: %s: cannot write the index\n", path);
    free(rows);
    return rc;
}

/* --json on a range: the run's line to the sink (s and r NULL: the run did
 * not load, `why` says why); under --jobs the brief records where it is. */
static void sweep__json_line(const sweep__plan_t *p, sweep__brief_t *b, const scenario_t *s,
                             const scn_result_t *r, const char *why) {
    FILE *sink = p->json_sink;
    if (sink == NULL) return;
    const long start = ftell(sink); /* -1 on stdout (a pipe): not needed there */
    if (s != NULL && r != NULL) scn_output_json(sink, s, r);
    else scn_output_json_error(sink, p->o->path, b->seed, (scn_variant_t)b->variant, why);
    if (fflush(sink) != 0 || start < 0) return;
    const long end = ftell(sink);
    if (end > start) {
        b->json_offset = (uint64_t)start;
        b->json_len = (uint32_t)(end - start);
    }
}

/* One run in this process; fills b. full = print the whole summary. */
static void sweep__run_one(const sweep__plan_t *p, uint64_t item, report_db_t *db, FILE *trace,
                           FILE *html, bool full, sweep__brief_t *b) {
    const scn_sweep_opts_t *o = p->o;
    uint64_t seed = 0;
    scn_variant_t v = SCN_VARIANT_NONE;
    sweep__item(p, item, &seed, &v);
    memset(b, 0, sizeof *b);
    b->item = (uint32_t)item;
    b->seed = seed;
    b->variant = (uint8_t)v;
    b->done = 1;
    b->exit_code = 2;
    char err[SCN_ERR_MAX];
    scenario_t *s = NULL;
    if (scenario_new(o->path, seed, &s, err, sizeof err) != 0) {
        fprintf(o->err, "%s\n", err);
        snprintf(b->why, sizeof b->why, "%s", err);
        if (!full && o->json) sweep__json_line(p, b, NULL, NULL, err);
        return;
    }
    scn_result_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        fprintf(o->err, "%s: out of memory\n", o->path);
        scenario_free(s);
        return;
    }
    /* --html DIR on a sweep: every run renders its page into memory; only
     * the runs that are not as expected keep it (in the worker, while the
     * run's history still exists). */
    char *page = NULL;
    size_t page_size = 0;
    const bool own_html = html == NULL && o->html_path != NULL && p->items > 1;
    if (own_html) html = open_memstream(&page, &page_size);
    const scn_run_opts_t ro = {.seed = seed, .variant = v, .overrides = o->overrides, .trace = trace,
                               .trace_format = o->trace_format, .message_id = o->message_id,
                               .message_out = o->message_id != 0 ? o->out : NULL, .html = html,
                               .budget = o->budget};
    if (o->message_id != 0)
        fprintf(o->out, "life of message %#" PRIx64 " (seed %" PRIu64 "%s%s): every event that "
                        "touched it, in virtual-time order (format: docs/trace.md)\n",
                o->message_id, seed, v != SCN_VARIANT_NONE ? ", variant " : "",
                v == SCN_VARIANT_WEAK ? "weak" : v == SCN_VARIANT_STRONG ? "strong" : "");
    (void)scn_engine_run(s, &ro, r);
    if (r->exit_code == 2) fprintf(o->err, "%s\n", r->err);
    if (db != NULL) {
        char dberr[REPORT_ERRMSG_SIZE_MAX];
        if (scn_output_db(db, s, r, o->overrides, NULL, dberr, sizeof dberr) != 0) {
            fprintf(o->err, "chaoslab run: %s: cannot store the run: %s\n", o->db_path, dberr);
            r->exit_code = 2;
        }
    }
    if (full) {
        if (o->json) scn_output_json(o->out, s, r);
        else scn_output_text(o->out, s, r);
    } else if (o->json) {
        sweep__json_line(p, b, s, r, NULL);
    }
    if (own_html && html != NULL) {
        fclose(html); /* sets page and page_size */
        if (r->exit_code != 0 && page != NULL &&
            sweep__write_page(o->html_path, seed, v, page, page_size, o->err) == 0)
            b->has_page = 1;
        free(page);
    }
    b->exit_code = (uint8_t)r->exit_code;
    b->verdict = (uint8_t)r->verdict;
    b->trace_hash = r->trace_hash;
    b->sim_time_ns = r->sim_time_ns;
    b->wall_time_ns = r->wall_time_ns;
    b->events = r->events;
    sweep__brief_figures(r, b);
    for (unsigned i = 0; r->judged && i < SCN_INV_COUNT; i++) {
        if (!r->inv[i].passed) b->violated |= (uint16_t)(1u << i);
        if (!r->inv[i].as_expected) b->failed |= (uint16_t)(1u << i);
    }
    scn_result_free(r);
    free(r);
    scenario_free(s);
}

static report_db_t *sweep__db_open(const scn_sweep_opts_t *o) {
    if (o->db_path == NULL) return NULL;
    report_db_t *db = NULL;
    char err[REPORT_ERRMSG_SIZE_MAX];
    if (report_db_open(o->db_path, &db, err, sizeof err) != 0) {
        fprintf(o->err, "chaoslab run: %s: %s\n", o->db_path, err);
        return NULL;
    }
    return db;
}

static void sweep__progress(const sweep__plan_t *p, uint64_t done, uint64_t failed) {
    if (!p->progress) return;
    enum { WIDTH = 30 };
    const unsigned fill = (unsigned)(done * WIDTH / p->items);
    fprintf(p->o->err, "\r[");
    for (unsigned i = 0; i < WIDTH; i++) fputc(i < fill ? '#' : '.', p->o->err);
    fprintf(p->o->err, "] %" PRIu64 "/%" PRIu64 " runs, %" PRIu64 " not as expected", done,
            p->items, failed);
    if (done == p->items) fprintf(p->o->err, "\r\033[K");
    fflush(p->o->err);
}

/* Worker k of n: items k, k+n, ...; reports each brief on `fd`. */
static void sweep__worker(sweep__plan_t *p, uint32_t k, uint32_t n, int fd) {
    report_db_t *db = sweep__db_open(p->o);
    p->json_sink = k < p->json_parts_count ? p->json_parts[k] : NULL;
    for (uint64_t item = k; item < p->items; item += n) {
        sweep__brief_t b;
        sweep__run_one(p, item, db, NULL, NULL, false, &b);
        fflush(p->o->err);
        const ssize_t w = write(fd, &b, sizeof b);
        if (w != (ssize_t)sizeof b) break;
    }
    report_db_close(db);
}

static int sweep__fork(sweep__plan_t *p) {
    const scn_sweep_opts_t *o = p->o;
    uint32_t jobs = o->jobs;
    if (jobs > p->items) jobs = (uint32_t)p->items;
    int fds[2];
    if (pipe(fds) != 0) {
        fprintf(o->err, "chaoslab run: pipe: %s\n", strerror(errno));
        return -1;
    }
    for (uint32_t k = 0; o->json && k < jobs; k++) {
        if ((p->json_parts[k] = tmpfile()) == NULL) {
            fprintf(o->err, "chaoslab run: --json: cannot create a temporary file: %s\n",
                    strerror(errno));
            close(fds[0]);
            close(fds[1]);
            for (uint32_t j = 0; j < k; j++) fclose(p->json_parts[j]);
            p->json_parts_count = 0;
            return -1;
        }
        p->json_parts_count = k + 1;
    }
    fflush(o->out);
    fflush(o->err);
    pid_t pids[SCN_JOBS_MAX];
    uint32_t started = 0;
    for (uint32_t k = 0; k < jobs; k++) {
        const pid_t pid = fork();
        if (pid < 0) break;
        if (pid == 0) {
            close(fds[0]);
            sweep__worker(p, k, jobs, fds[1]);
            close(fds[1]);
            fflush(NULL);
            _exit(0);
        }
        pids[started++] = pid;
    }
    close(fds[1]);
    uint64_t done = 0, failed = 0;
    sweep__brief_t b;
    /* Only the workers that started run items; missing ones stay "not done". */
    while (read(fds[0], &b, sizeof b) == (ssize_t)sizeof b) {
        if (b.item >= p->items) continue;
        p->briefs[b.item] = b;
        done++;
        if (b.exit_code != 0) failed++;
        sweep__progress(p, done, failed);
    }
    close(fds[0]);
    for (uint32_t i = 0; i < started; i++) {
        int status = 0;
        (void)waitpid(pids[i], &status, 0);
    }
    return started == jobs ? 0 : -1;
}

/* --json under --jobs: the workers' lines, in seed order (a run no worker
 * reported gets an error line), then the part files go. */
static void sweep__json_collect(sweep__plan_t *p) {
    const scn_sweep_opts_t *o = p->o;
    char *line = NULL;
    for (uint64_t i = 0; i < p->items; i++) {
        const sweep__brief_t *b = &p->briefs[i];
        const uint32_t k = p->json_parts_count > 0 ? (uint32_t)(i % p->json_parts_count) : 0;
        char *grown = b->done && b->json_len > 0 ? realloc(line, b->json_len) : NULL;
        if (grown != NULL) line = grown;
        if (grown != NULL && k < p->json_parts_count &&
            pread(fileno(p->json_parts[k]), line, b->json_len, (off_t)b->json_offset) ==
                (ssize_t)b->json_len) {
            fwrite(line, 1, b->json_len, o->out);
            continue;
        }
        uint64_t seed = 0;
        scn_variant_t v = SCN_VARIANT_NONE;
        sweep__item(p, i, &seed, &v);
        scn_output_json_error(o->out, o->path, seed, v,
                              b->done ? "the run's JSON line was lost" : "no worker ran this seed");
    }
    free(line);
    for (uint32_t k = 0; k < p->json_parts_count; k++) fclose(p->json_parts[k]);
    p->json_parts_count = 0;
}

static void sweep__print_line(const sweep__plan_t *p, const sweep__brief_t *b) {
    FILE *out = p->o->out;
    const char *v = scn_variant_name((scn_variant_t)b->variant);
    fprintf(out, "seed %-6" PRIu64 " %-6s ", b->seed, v);
    if (!b->done || b->exit_code == 2) {
        fprintf(out, "ERROR\n");
        return;
    }
    if (b->verdict == REPORT_VERDICT_STALLED || b->verdict == REPORT_VERDICT_INVARIANT) {
        char repro[SCN_REPRO_MAX];
        scn_reproduce_format(p->o->path, b->seed, (scn_variant_t)b->variant, p->o->overrides,
                             &p->o->budget, repro, sizeof repro);
        fprintf(out, "%s %016" PRIx64 "  at sim %.3fs after %" PRIu64 " events\n"
                     "    reproduce with: %s\n",
                b->verdict == REPORT_VERDICT_STALLED ? "STALLED" : "INVARIANT", b->trace_hash,
                (double)b->sim_time_ns / 1e9, b->events, repro);
        return;
    }
    fprintf(out, "%-4s %016" PRIx64 "  ", b->exit_code == 0 ? "PASS" : "FAIL", b->trace_hash);
    /* Name what decided the verdict first; violations nobody expected to
     * hold (informational ones) come after, marked as such. */
    const uint16_t info = (uint16_t)(b->violated & ~b->failed);
    if (b->violated == 0) fprintf(out, "every invariant held");
    if (b->failed != 0) {
        fprintf(out, "not as expected:");
        for (unsigned i = 0; i < SCN_INV_COUNT; i++)
            if (b->failed & (1u << i)) fprintf(out, " %s", scn_invariant_name(i));
    }
    if (info != 0) {
        fprintf(out, "%s", b->failed ? "; " : "");
        fprintf(out, "violated (expected or informational):");
        for (unsigned i = 0; i < SCN_INV_COUNT; i++)
            if (info & (1u << i)) fprintf(out, " %s", scn_invariant_name(i));
    }
    fputc('\n', out);
    if (b->exit_code == 1) {
        char repro[SCN_REPRO_MAX];
        scn_reproduce_format(p->o->path, b->seed, (scn_variant_t)b->variant, p->o->overrides,
                             &p->o->budget, repro, sizeof repro);
        fprintf(out, "    reproduce with: %s\n", repro);
    }
}

/* A sweep's counts per strategy side, for the JSON summary. */
typedef struct sweep__tally {
    const uint64_t *passed, *stalled, *tripped, *errors; /* [side] */
    const uint64_t (*violated)[SCN_INV_COUNT];           /* [side][invariant] */
    uint64_t lesson_seen; /* weak runs that showed the lesson's violation */
} sweep__tally_t;

/* The "path", "seeds", "seed_first", "seed_last" and "shard" members. */
static void sweep__json_range(const sweep__plan_t *p) {
    FILE *out = p->o->out;
    fputs("\"path\":", out);
    scn_json_string(out, p->o->path);
    fprintf(out, ",\"seeds\":\"%" PRIu64 "..%" PRIu64 "\",\"seed_first\":%" PRIu64
                 ",\"seed_last\":%" PRIu64 ",\"shard\":",
            p->first, p->last, p->first, p->last);
    if (p->o->shard_text != NULL) scn_json_string(out, p->o->shard_text);
    else fputs("null", out);
}

/* --json on a range: the last line, after one line per run
 * (docs/reports.md, "chaoslab run --json"). */
static void sweep__json_summary(const sweep__plan_t *p, const sweep__tally_t *t, bool ok) {
    FILE *out = p->o->out;
    fputs("{\"type\":\"summary\",\"sweep\":true,", out);
    sweep__json_range(p);
    fprintf(out, ",\"runs\":%" PRIu64 ",\"strategies\":[", p->items);
    for (uint32_t side = 0; side < p->variants_count; side++) {
        fprintf(out, "%s{\"variant\":\"%s\",\"strategy\":", side ? "," : "",
                scn_variant_name(p->variants[side]));
        scn_json_string(out, p->strategies[side]);
        fprintf(out, ",\"runs\":%" PRIu64 ",\"passed\":%" PRIu64 ",\"stalled\":%" PRIu64
                     ",\"invariant\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"violations\":{",
                p->seeds, t->passed[side], t->stalled[side], t->tripped[side], t->errors[side]);
        for (unsigned k = 0; k < SCN_INV_COUNT; k++)
            fprintf(out, "%s\"%s\":%" PRIu64, k ? "," : "", scn_invariant_name(k),
                    t->violated[side][k]);
        fputs("}}", out);
    }
    fputc(']', out);
    if (p->teach) {
        fputs(",\"lesson\":{\"text\":", out);
        scn_json_string(out, p->lesson);
        fputs(",\"violation\":", out);
        scn_json_string(out, p->violation);
        fprintf(out, ",\"weak_showed\":%" PRIu64 ",\"demonstrated\":%s}", t->lesson_seen,
                ok ? "true" : "false");
    }
    fprintf(out, ",\"ok\":%s}\n", ok ? "true" : "false");
}

/* Returns the exit code from the collected briefs and prints the summary. */
static int sweep__summarize(const sweep__plan_t *p) {
    const scn_sweep_opts_t *o = p->o;
    const uint64_t seeds = p->seeds;
    bool error = false;
    uint64_t passed[2] = {0, 0}, stalled[2] = {0, 0}, tripped[2] = {0, 0}, errors[2] = {0, 0};
    uint64_t violated[2][SCN_INV_COUNT];
    memset(violated, 0, sizeof violated);
    for (uint64_t i = 0; i < p->items; i++) {
        const sweep__brief_t *b = &p->briefs[i];
        const uint32_t side = (uint32_t)(i % p->variants_count);
        if (!b->done || b->exit_code == 2) {
            error = true;
            errors[side]++;
        }
        if (b->done && b->exit_code == 0) passed[side]++;
        if (b->done && b->verdict == REPORT_VERDICT_STALLED) stalled[side]++;
        if (b->done && b->verdict == REPORT_VERDICT_INVARIANT) tripped[side]++;
        for (unsigned k = 0; b->done && k < SCN_INV_COUNT; k++)
            if (b->violated & (1u << k)) violated[side][k]++;
        if (!o->json) sweep__print_line(p, b);
    }
    const int lesson_inv = p->teach ? scn_invariant_parse(p->violation) : -1;
    bool ok = !error && stalled[0] + stalled[1] + tripped[0] + tripped[1] == 0;
    if (p->teach && p->variants_count == 2) {
        ok = ok && violated[0][lesson_inv] >= 1 && passed[1] == seeds;
    } else if (p->teach && p->variants[0] == SCN_VARIANT_WEAK) {
        ok = ok && violated[0][lesson_inv] >= 1;
    } else {
        ok = ok && passed[0] == seeds;
    }
    if (o->json) {
        const sweep__tally_t t = {passed, stalled, tripped, errors, violated,
                                  lesson_inv >= 0 ? violated[0][lesson_inv] : 0};
        sweep__json_summary(p, &t, ok);
        return error ? 2 : ok ? 0 : 1;
    }
    for (uint32_t side = 0; side < p->variants_count; side++) {
        fprintf(o->out, "\nstrategy %s%s%s: %" PRIu64 "/%" PRIu64 " seeds passed\n",
                scn_variant_name(p->variants[side]), p->variants[side] ? " " : "",
                p->strategies[side], passed[side], seeds);
        fprintf(o->out, "  %-18s %" PRIu64 "/%" PRIu64 " seeds (over the event or wall budget)\n",
                "stalled", stalled[side], seeds);
        fprintf(o->out, "  %-18s %" PRIu64 "/%" PRIu64 " seeds (an internal invariant tripped)\n",
                "invariant", tripped[side], seeds);
        for (unsigned k = 0; k < SCN_INV_COUNT; k++)
            fprintf(o->out, "  %-18s violated in %" PRIu64 "/%" PRIu64 " seeds\n",
                    scn_invariant_name(k), violated[side][k], seeds);
    }
    if (p->teach) {
        fprintf(o->out, "\nlesson: %s\n", p->lesson);
        fprintf(o->out, "lesson %s: weak showed %s in %" PRIu64 "/%" PRIu64 " seeds",
                ok ? "DEMONSTRATED" : "NOT demonstrated", p->violation, violated[0][lesson_inv],
                seeds);
        if (p->variants_count == 2)
            fprintf(o->out, "; strong passed %" PRIu64 "/%" PRIu64 " seeds", passed[1], seeds);
        fputc('\n', o->out);
    }
    return error ? 2 : ok ? 0 : 1;
}

/* --junit: the briefs as JUnit XML. Returns 0, or -1 after a message. */
static int sweep__junit(const sweep__plan_t *p, const sweep__brief_t *briefs, FILE *f) {
    const scn_sweep_opts_t *o = p->o;
    scn_junit_case_t *cases = p->items > 0 ? calloc(p->items, sizeof *cases) : NULL;
    if (p->items > 0 && cases == NULL) {
        fprintf(o->err, "chaoslab run: %s: out of memory\n", o->junit_path);
        return -1;
    }
    for (uint64_t i = 0; i < p->items; i++) {
        const sweep__brief_t *b = &briefs[i];
        scn_junit_case_t *c = &cases[i];
        sweep__item(p, i, &c->seed, &c->variant);
        *c = (scn_junit_case_t){c->seed, b->trace_hash, b->sim_time_ns, b->wall_time_ns,
                                b->events, b->published, b->confirmed, b->lost,
                                b->availability, c->variant, (report_verdict_t)b->verdict,
                                b->done ? b->exit_code : 2, b->done != 0, b->violated,
                                b->failed, ""};
        snprintf(c->why, sizeof c->why, "%s", b->why);
    }
    scn_junit_suite_t suites[2];
    for (uint32_t k = 0; k < p->variants_count; k++)
        suites[k] = (scn_junit_suite_t){p->variants[k], p->strategies[k]};
    const scn_junit_doc_t doc = {o->path, p->name, o->shard_text, suites, p->variants_count,
                                 cases, p->items, o->overrides, &o->budget};
    int rc = scn_junit_write(f, &doc);
    free(cases);
    if (fclose(f) != 0) rc = -1;
    if (rc != 0) fprintf(o->err, "chaoslab run: %s: cannot write the JUnit file\n", o->junit_path);
    return rc;
}

/* Open --junit before any run, so a bad path is a usage error. */
static int sweep__junit_open(const scn_sweep_opts_t *o, FILE **f) {
    *f = NULL;
    if (o->junit_path == NULL) return 0;
    *f = fopen(o->junit_path, "w");
    if (*f != NULL) return 0;
    fprintf(o->err, "chaoslab run: --junit %s: %s\n", o->junit_path, strerror(errno));
    return -1;
}

/* --shard I/N keeps the seeds s of the range with s mod N == I: a function
 * of the seed alone, so every machine splits a range the same way and
 * every seed lands in exactly one shard. */
static void sweep__shard(sweep__plan_t *p, const scn_sweep_opts_t *o) {
    const uint64_t n = o->shard_count > 0 ? o->shard_count : 1;
    const uint64_t i = o->shard_count > 0 ? o->shard_index : 0;
    const uint64_t skip = (i + n - p->first % n) % n; /* first seed >= first that is i mod n */
    p->stride = n;
    p->seed0 = p->first + skip;
    p->seeds = skip > p->last - p->first ? 0 : (p->last - p->first - skip) / n + 1;
}

static int sweep__plan(sweep__plan_t *p, const scn_sweep_opts_t *o) {
    char err[SCN_ERR_MAX];
    scenario_t *s = NULL;
    const uint64_t probe_seed = o->has_seeds ? o->seed_first : 1;
    if (scenario_new(o->path, probe_seed, &s, err, sizeof err) != 0) {
        fprintf(o->err, "%s\n", err);
        return -1;
    }
    int rc = 0;
    p->o = o;
    p->first = o->has_seeds ? o->seed_first : s->seed_first;
    p->last = o->has_seeds ? o->seed_last : s->seed_last;
    p->teach = s->teach.present;
    snprintf(p->lesson, sizeof p->lesson, "%s", s->teach.lesson);
    snprintf(p->name, sizeof p->name, "%s", s->name);
    snprintf(p->violation, sizeof p->violation, "%s", s->teach.violation);
    if (o->has_variant && !s->teach.present) {
        fprintf(o->err, "%s: --variant needs a scenario with teach{}\n", o->path);
        rc = -1;
    } else if (o->has_variant) {
        p->variants[p->variants_count++] = o->variant;
    } else if (s->teach.present) {
        p->variants[p->variants_count++] = SCN_VARIANT_WEAK;
        p->variants[p->variants_count++] = SCN_VARIANT_STRONG;
    } else {
        p->variants[p->variants_count++] = SCN_VARIANT_NONE;
    }
    for (uint32_t i = 0; rc == 0 && i < p->variants_count; i++) {
        if (scn_strategy_describe(s, p->variants[i], o->overrides, p->strategies[i],
                                  sizeof p->strategies[i]) != 0) {
            fprintf(o->err, "chaoslab run: %s: strategy: %s\n", o->path, p->strategies[i]);
            rc = -1;
        }
    }
    scenario_free(s);
    sweep__shard(p, o);
    p->items = p->seeds * p->variants_count;
    return rc;
}

int scn_sweep_main(const scn_sweep_opts_t *o) {
    assert(o != NULL && o->path != NULL && o->out != NULL && o->err != NULL);
    sweep__plan_t p;
    memset(&p, 0, sizeof p);
    if (sweep__plan(&p, o) != 0) return 2;
    if (p.items == 0) {
        /* More shards than seeds: this shard has nothing to do, and that is
         * not a failure (the other shards hold every seed). */
        if (o->json) {
            fputs("{\"type\":\"summary\",\"sweep\":true,", o->out);
            sweep__json_range(&p);
            fputs(",\"runs\":0,\"strategies\":[],\"ok\":true}\n", o->out);
        } else {
            fprintf(o->out, "shard %s of seeds %" PRIu64 "..%" PRIu64 ": no seeds\n",
                    o->shard_text != NULL ? o->shard_text : "?", p.first, p.last);
        }
        FILE *junit = NULL;
        if (sweep__junit_open(o, &junit) != 0) return 2;
        if (junit != NULL && sweep__junit(&p, NULL, junit) != 0) return 2;
        return 0;
    }
    if (o->message_id != 0 && o->json) {
        fprintf(o->err, "chaoslab run: --message prints text; drop --json (--trace-format json "
                        "makes its lines JSON)\n");
        return 2;
    }
    if ((o->trace_path != NULL || o->message_id != 0) && p.items != 1) {
        fprintf(o->err, "chaoslab run: %s follows one run: add --seed N%s\n",
                o->trace_path != NULL ? "--trace" : "--message",
                p.teach ? " and --variant weak|strong" : "");
        return 2;
    }
    FILE *junit = NULL;
    if (sweep__junit_open(o, &junit) != 0) return 2;
    /* Check the database once up front so a bad --db is a usage error. */
    report_db_t *db = sweep__db_open(o);
    if (o->db_path != NULL && db == NULL) {
        if (junit != NULL) fclose(junit);
        return 2;
    }
    if (p.items == 1) {
        FILE *trace = NULL;
        char *trace_buf = NULL;
        if (o->trace_path != NULL) {
            trace = fopen(o->trace_path, "w");
            if (trace == NULL) {
                fprintf(o->err, "chaoslab run: %s: %s\n", o->trace_path, strerror(errno));
                report_db_close(db);
                if (junit != NULL) fclose(junit);
                return 2;
            }
            trace_buf = malloc(SWEEP__TRACE_BUFFER_BYTES);
            if (trace_buf != NULL) setvbuf(trace, trace_buf, _IOFBF, SWEEP__TRACE_BUFFER_BYTES);
        }
        FILE *html = NULL;
        if (o->html_path != NULL && (html = fopen(o->html_path, "w")) == NULL) {
            fprintf(o->err, "chaoslab run: %s: %s\n", o->html_path, strerror(errno));
            if (trace != NULL) fclose(trace);
            free(trace_buf);
            report_db_close(db);
            return 2;
        }
        sweep__brief_t b;
        sweep__run_one(&p, 0, db, trace, html, true, &b);
        if (trace != NULL && fclose(trace) != 0) b.exit_code = 2;
        if (html != NULL && fclose(html) != 0) b.exit_code = 2;
        free(trace_buf);
        report_db_close(db);
        if (junit != NULL && sweep__junit(&p, &b, junit) != 0) return 2;
        return b.exit_code; /* a weak run's verdict already means "showed it" */
    }
    if (o->html_path != NULL && mkdir(o->html_path, 0777) != 0 && errno != EEXIST) {
        fprintf(o->err, "chaoslab run: --html %s: %s (a range writes a directory)\n", o->html_path,
                strerror(errno));
        report_db_close(db);
        return 2;
    }
    p.briefs = calloc(p.items, sizeof *p.briefs);
    if (p.briefs == NULL) {
        report_db_close(db);
        if (junit != NULL) fclose(junit);
        fprintf(o->err, "chaoslab run: out of memory\n");
        return 2;
    }
    p.progress = isatty(fileno(o->err)) && !o->json;
    int rc = 0;
    if (o->jobs <= 1) {
        p.json_sink = o->json ? o->out : NULL; /* each run's line as it ends */
        uint64_t failed = 0;
        for (uint64_t i = 0; i < p.items; i++) {
            sweep__run_one(&p, i, db, NULL, NULL, false, &p.briefs[i]);
            if (p.briefs[i].exit_code != 0) failed++;
            sweep__progress(&p, i + 1, failed);
        }
        report_db_close(db);
    } else {
        report_db_close(db); /* never share a connection across fork */
        if (sweep__fork(&p) != 0) fprintf(o->err, "chaoslab run: some workers did not start\n");
        if (o->json) sweep__json_collect(&p);
    }
    rc = sweep__summarize(&p);
    if (junit != NULL && sweep__junit(&p, p.briefs, junit) != 0) rc = 2;
    if (o->html_path != NULL && sweep__write_index(&p) != 0) rc = 2;
    free(p.briefs);
    return rc;
}

int scn_shard_parse(const char *text, uint64_t *index, uint64_t *count) {
    if (text == NULL) return -1;
    const char *slash = strchr(text, '/');
    if (slash == NULL || slash == text || slash[1] == '\0') return -1;
    char head[32];
    const size_t len = (size_t)(slash - text);
    if (len >= sizeof head) return -1;
    memcpy(head, text, len);
    head[len] = '\0';
    for (const char *c = text; *c; c++)
        if ((*c < '0' || *c > '9') && c != slash) return -1; /* no signs, spaces, hex */
    char *end = NULL;
    errno = 0;
    const unsigned long long i = strtoull(head, &end, 10);
    if (errno != 0 || *end != '\0') return -1;
    const unsigned long long n = strtoull(slash + 1, &end, 10);
    if (errno != 0 || *end != '\0' || n == 0 || n > SCN_SHARDS_MAX || i >= n) return -1;
    *index = i;
    *count = n;
    return 0;
}

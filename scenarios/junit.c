/* scenarios/junit.c — JUnit XML for `chaoslab run --junit FILE`. */
#include "scenarios/junit.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

void scn_junit_escape(FILE *out, const char *s) {
    for (const unsigned char *c = (const unsigned char *)(s != NULL ? s : ""); *c; c++) {
        switch (*c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        case '\n': case '\t': fputc(*c, out); break;
        default:
            /* XML 1.0 forbids most control characters even as references. */
            if (*c >= 0x20) fputc(*c, out);
        }
    }
}

typedef struct junit__counts {
    uint64_t tests, failures, errors;
    double time_s;
} junit__counts_t;

static bool junit__is_error(const scn_junit_case_t *c) {
    return !c->done || c->exit_code == 2 || c->verdict == REPORT_VERDICT_STALLED ||
           c->verdict == REPORT_VERDICT_INVARIANT;
}

static void junit__count(const scn_junit_case_t *c, junit__counts_t *n) {
    n->tests++;
    n->time_s += (double)c->wall_time_ns / 1e9;
    if (junit__is_error(c)) n->errors++;
    else if (c->exit_code != 0) n->failures++;
}

static void junit__inv_list(FILE *out, uint16_t bits) {
    for (unsigned i = 0; i < SCN_INV_COUNT; i++)
        if (bits & (1u << i)) fprintf(out, " %s", scn_invariant_name(i));
}

/* The key figures, one per line (also the body of a failure). */
static void junit__figures(FILE *out, const scn_junit_case_t *c) {
    fprintf(out, "trace_hash %016" PRIx64 "\nsim_time_s %.3f\nevents %" PRIu64 "\n",
            c->trace_hash, (double)c->sim_time_ns / 1e9, c->events);
    fprintf(out, "published %" PRIu64 "\nconfirmed %" PRIu64 "\nlost %" PRIu64 "\n",
            c->published, c->confirmed, c->lost);
    if (c->availability >= 0) fprintf(out, "availability %.4f\n", c->availability);
    if (c->violated != 0) {
        fputs("violated:", out);
        junit__inv_list(out, c->violated);
        fputc('\n', out);
    }
}

static void junit__outcome(FILE *out, const scn_junit_doc_t *d, const scn_junit_case_t *c) {
    char repro[SCN_REPRO_MAX];
    scn_reproduce_format(d->path, c->seed, c->variant, d->overrides, d->budget, repro,
                         sizeof repro);
    const bool error = junit__is_error(c);
    const char *type = !c->done || c->exit_code == 2 ? "error"
                       : report_verdict_name(c->verdict);
    if (error) {
        fprintf(out, "      <error type=\"%s\" message=\"", type);
        scn_junit_escape(out, c->done ? c->why : "the worker never reported this run");
    } else {
        fputs("      <failure type=\"fail\" message=\"not as expected:", out);
        junit__inv_list(out, c->failed);
    }
    fputs("\">", out);
    junit__figures(out, c);
    fputs("reproduce with: ", out);
    scn_junit_escape(out, repro);
    fprintf(out, "\n</%s>\n", error ? "error" : "failure");
}

static void junit__case(FILE *out, const scn_junit_doc_t *d, const scn_junit_suite_t *s,
                        const scn_junit_case_t *c) {
    fputs("    <testcase classname=\"", out);
    scn_junit_escape(out, d->scenario_name);
    if (s->variant != SCN_VARIANT_NONE) fprintf(out, ".%s", scn_variant_name(s->variant));
    fprintf(out, "\" name=\"seed %" PRIu64 "\" time=\"%.3f\">\n", c->seed,
            (double)c->wall_time_ns / 1e9);
    if (c->exit_code != 0 || !c->done) junit__outcome(out, d, c);
    fputs("      <system-out>", out);
    junit__figures(out, c);
    fputs("</system-out>\n    </testcase>\n", out);
}

static void junit__property(FILE *out, const char *name, const char *value) {
    fprintf(out, "      <property name=\"%s\" value=\"", name);
    scn_junit_escape(out, value);
    fputs("\"/>\n", out);
}

static void junit__suite(FILE *out, const scn_junit_doc_t *d, uint32_t k) {
    const scn_junit_suite_t *s = &d->suites[k];
    junit__counts_t n = {0};
    for (uint64_t i = k; i < d->cases_count; i += d->suites_count) junit__count(&d->cases[i], &n);
    fputs("  <testsuite name=\"", out);
    scn_junit_escape(out, d->scenario_name);
    if (s->variant != SCN_VARIANT_NONE) fprintf(out, " %s", scn_variant_name(s->variant));
    fputs(" [", out);
    scn_junit_escape(out, s->strategy);
    fprintf(out, "]\" tests=\"%" PRIu64 "\" failures=\"%" PRIu64 "\" errors=\"%" PRIu64
                 "\" skipped=\"0\" time=\"%.3f\">\n    <properties>\n",
            n.tests, n.failures, n.errors, n.time_s);
    junit__property(out, "scenario", d->path);
    junit__property(out, "strategy", s->strategy);
    junit__property(out, "variant", scn_variant_name(s->variant));
    if (d->shard != NULL) junit__property(out, "shard", d->shard);
    fputs("    </properties>\n", out);
    for (uint64_t i = k; i < d->cases_count; i += d->suites_count)
        junit__case(out, d, s, &d->cases[i]);
    fputs("  </testsuite>\n", out);
}

int scn_junit_write(FILE *out, const scn_junit_doc_t *d) {
    assert(out != NULL && d != NULL && d->suites_count > 0);
    junit__counts_t all = {0};
    for (uint64_t i = 0; i < d->cases_count; i++) junit__count(&d->cases[i], &all);
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<testsuites name=\"chaoslab\" tests=\"%" PRIu64 "\" failures=\"%" PRIu64
                 "\" errors=\"%" PRIu64 "\" time=\"%.3f\">\n",
            all.tests, all.failures, all.errors, all.time_s);
    for (uint32_t k = 0; k < d->suites_count; k++) junit__suite(out, d, k);
    fputs("</testsuites>\n", out);
    return ferror(out) ? -1 : 0;
}

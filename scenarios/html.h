/*
 * scenarios/html.h — one run as a self-contained HTML page (docs/trace.md,
 * "The HTML page"): inline SVG and CSS, no network, no external files.
 *
 * A lane per broker (leader / follower / candidate / down / paused / ...,
 * from the engine's 10 ms replica samples in the history, with terms), the
 * fault actions as markers and the network faults as bands until their heal,
 * per-interval publish/confirm rates and availability, the invariant table,
 * the violations with the command for each message's life, and the
 * reproduce command.
 */
#ifndef CHAOSLAB_SCENARIOS_HTML_H
#define CHAOSLAB_SCENARIOS_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scenarios/engine.h"
#include "sim/history.h"

#define SCN_HTML_WIDTH_PX 1000u  /* plot area width */
#define SCN_HTML_LANE_PX 22u     /* height of one broker lane */
#define SCN_HTML_SEGMENTS_MAX 4096u /* role segments drawn per broker */

/* Write the page of finished run `r` (history h: its replica samples) to
 * out. Returns 0, or -1 when writing failed. */
int scn_html_write(FILE *out, const history_t *h, uint32_t replicas, const scn_result_t *r);

/* One run of a sweep in the index page. */
typedef struct scn_html_row {
    uint64_t seed;
    scn_variant_t variant;
    report_verdict_t verdict;
    int exit_code;              /* 0 = as expected */
    uint16_t violated;          /* bit per SCN_INV_*: did not hold */
    uint64_t events, sim_time_ns, trace_hash;
    bool has_page;              /* a page of its own was written (failing runs) */
} scn_html_row_t;

/* "seed-7.html", "seed-7-weak.html": the page of one run of a sweep. */
void scn_html_page_name(uint64_t seed, scn_variant_t variant, char *buf, size_t cap);

/* The index page of a sweep: one row per run (verdict, violated invariants,
 * key figures, a link to its page when it has one). Returns 0 or -1. */
int scn_html_index(FILE *out, const char *scenario_path, const scn_html_row_t *rows, size_t count);

#endif

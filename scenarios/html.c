/*
 * scenarios/html.c — the self-contained HTML page of one run.
 */
#include "scenarios/html.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HTML__LABEL_PX 56u   /* left margin for lane and link labels */
#define HTML__PLOT_PX 120u   /* height of one plot */
#define HTML__SECONDS_MAX 3600u /* seconds of latency plotted */
#define HTML__LINK_ROW_PX 12u    /* height of one link row */
#define HTML__BROKERS_MAX 32u    /* brokers a fault's target set can name */
#define HTML__CLIENT_ROWS_MAX 16u /* client-broker links drawn (those ever cut) */
#define HTML__LINK_ROWS_MAX \
    (HTML__BROKERS_MAX * (HTML__BROKERS_MAX - 1) / 2 + HTML__CLIENT_ROWS_MAX)

static const char *const html__role_color[HISTORY_ROLE_COUNT] = {
    "#9e9e9e", /* down */
    "#ffb300", /* paused */
    "#90caf9", /* recovering */
    "#6d4c41", /* failed */
    "#c8e6c9", /* follower */
    "#fff176", /* candidate */
    "#2e7d32", /* leader */
    "#e53935", /* corrupt */
};

static void html__text(FILE *out, const char *s) {
    for (; s != NULL && *s != '\0'; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

static double html__x(uint64_t t_ns, uint64_t end_ns) {
    return HTML__LABEL_PX + (double)SCN_HTML_WIDTH_PX * (double)t_ns / (double)(end_ns ? end_ns : 1);
}

/* One lane: the runs of equal (role, term) in the broker's samples. */
static void html__lane(FILE *out, const history_t *h, uint32_t node, uint64_t end_ns, double y) {
    fprintf(out, "<g class=\"lane\" data-node=\"n%" PRIu32 "\">\n", node);
    fprintf(out, "<text x=\"2\" y=\"%.1f\" class=\"label\">n%" PRIu32 "</text>\n",
            y + SCN_HTML_LANE_PX * 0.7, node);
    uint64_t start = 0, term = 0;
    int role = -1;
    uint32_t drawn = 0;
    const uint64_t n = history_count(h);
    for (uint64_t i = 0; i <= n && drawn < SCN_HTML_SEGMENTS_MAX; i++) {
        const history_record_t *r = i < n ? history_get(h, i) : NULL;
        if (r != NULL && (r->op != HISTORY_OP_REPLICA || r->node != node)) continue;
        const uint64_t t = r != NULL ? r->time_ns : end_ns;
        if (r != NULL && r->detail == role && r->sequence == term) continue;
        if (role >= 0 && role < (int)HISTORY_ROLE_COUNT && t > start) {
            const double x0 = html__x(start, end_ns), x1 = html__x(t, end_ns);
            fprintf(out,
                    "<rect class=\"role-%s\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%u\" "
                    "fill=\"%s\"><title>n%" PRIu32 " %s term %" PRIu64 " %.3fs-%.3fs</title></rect>\n",
                    history_role_name((unsigned)role), x0, y, x1 - x0, SCN_HTML_LANE_PX - 2,
                    html__role_color[role], node, history_role_name((unsigned)role), term,
                    (double)start / 1e9, (double)t / 1e9);
            if (role == HISTORY_ROLE_LEADER && x1 - x0 > 24)
                fprintf(out, "<text x=\"%.2f\" y=\"%.1f\" class=\"term\">t%" PRIu64 "</text>\n",
                        x0 + 2, y + SCN_HTML_LANE_PX * 0.7, term);
            drawn++;
        }
        if (r == NULL) break;
        start = r->time_ns;
        role = r->detail;
        term = r->sequence;
    }
    fputs("</g>\n", out);
}

static bool html__is_net_fault(const char *kind) {
    static const char *const kinds[] = {"isolate", "split", "bridge", "one_way", "ring",
                                        "links", "clog"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, kinds[i]) == 0) return true;
    return false;
}

/* The brokers a fault names ("n0,n2"); every broker for "all" or a target
 * that names none (links of the whole cluster). */
static uint32_t html__target_set(const char *target, uint32_t replicas) {
    uint32_t set = 0;
    for (const char *p = target; p != NULL && (p = strchr(p, 'n')) != NULL; p++) {
        char *end = NULL;
        const unsigned long n = strtoul(p + 1, &end, 10);
        if (end != p + 1 && n < replicas && n < 32) set |= 1u << n;
    }
    return set != 0 ? set : (replicas >= 32 ? UINT32_MAX : (1u << replicas) - 1);
}

static uint64_t html__fault_end(const scn_result_t *r, uint32_t i, uint64_t end_ns);

/* Network faults as bands until the next heal, on the lanes of the brokers
 * they cut off; every action as a marker across all lanes. */
static void html__faults(FILE *out, const scn_result_t *r, uint32_t replicas, uint64_t end_ns,
                         double y, double height) {
    fprintf(out, "<g class=\"faults\">\n");
    for (uint32_t i = 0; i < r->timeline_count; i++) {
        const faults_event_t *f = &r->timeline[i];
        if (!html__is_net_fault(f->kind)) continue;
        const uint64_t until = html__fault_end(r, i, end_ns);
        const double x0 = html__x(f->time_ns, end_ns), x1 = html__x(until, end_ns);
        const uint32_t set = html__target_set(f->target, replicas);
        for (uint32_t lane = 0; lane < replicas && lane < 32; lane++) {
            if (!(set & (1u << lane))) continue;
            fprintf(out, "<rect class=\"fault-band\" data-node=\"n%" PRIu32 "\" x=\"%.2f\" "
                         "y=\"%.1f\" width=\"%.2f\" height=\"%u\"><title>",
                    lane, x0, y + lane * SCN_HTML_LANE_PX, x1 - x0 > 1 ? x1 - x0 : 1,
                    SCN_HTML_LANE_PX - 2);
            html__text(out, f->kind);
            fputc(' ', out);
            html__text(out, f->target);
            fprintf(out, " %.3fs-%.3fs</title></rect>\n", (double)f->time_ns / 1e9,
                    (double)until / 1e9);
        }
    }
    for (uint32_t i = 0; i < r->timeline_count; i++) {
        const faults_event_t *f = &r->timeline[i];
        const double x = html__x(f->time_ns, end_ns);
        fprintf(out, "<line class=\"fault\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%.1f\" y2=\"%.1f\">"
                     "<title>%.3fs ", x, x, y, y + height, (double)f->time_ns / 1e9);
        html__text(out, f->kind);
        fputc(' ', out);
        html__text(out, f->target);
        fputc(' ', out);
        html__text(out, f->detail);
        fputs("</title></line>\n", out);
    }
    fputs("</g>\n", out);
}

/* ---- links: which links each network fault cut ---------------------------
 * A row per broker pair, then one per client-broker link some fault cut;
 * each network fault draws, from its action to its end (the next heal, or
 * a clog's duration), the links it affected: the top half of a row is the
 * lower host -> the higher one, the bottom half the other direction, so a
 * one-way cut fills half a row. The cut is recomputed from the fault's
 * kind, target and detail exactly as faults/faults.c applies it. */

enum { HTML__LINK_OK = 0, HTML__LINK_CUT, HTML__LINK_CLOG, HTML__LINK_SLOW };
static const char *const html__link_class[] = {"", "cut-link", "clog-link", "slow-link"};
static const char *const html__link_word[] = {"", "cut", "clogged", "degraded"};

typedef struct html__link_rows {
    uint32_t lo[HTML__LINK_ROWS_MAX], hi[HTML__LINK_ROWS_MAX]; /* lo < hi (host ids) */
    uint32_t count;
} html__link_rows_t;

/* A client fault's host: "host5" -> 5; -1 otherwise. */
static long html__client_host(const char *target) {
    if (strncmp(target, "host", 4) != 0) return -1;
    char *end = NULL;
    const unsigned long h = strtoul(target + 4, &end, 10);
    return end != target + 4 && *end == '\0' && h < UINT32_MAX ? (long)h : -1;
}

/* What fault f does to the directed link x -> y (host ids; brokers are
 * 0..replicas-1, clients above). */
static int html__link_effect(const faults_event_t *f, uint32_t replicas, uint32_t x, uint32_t y) {
    const bool brokers = x < replicas && y < replicas && x < HTML__BROKERS_MAX &&
                         y < HTML__BROKERS_MAX && x != y;
    if (strcmp(f->kind, "partition_client") == 0) {
        const long c = html__client_host(f->target);
        const uint32_t set = html__target_set(f->detail, replicas);
        if (c >= 0 && (uint32_t)c == x && y < HTML__BROKERS_MAX && (set >> y & 1u))
            return HTML__LINK_CUT;
        if (c >= 0 && (uint32_t)c == y && x < HTML__BROKERS_MAX && (set >> x & 1u))
            return HTML__LINK_CUT;
        return HTML__LINK_OK;
    }
    if (!brokers) return HTML__LINK_OK;
    const uint32_t s = html__target_set(f->target, replicas);
    const bool in_x = s >> x & 1u, in_y = s >> y & 1u;
    if (strcmp(f->kind, "isolate") == 0) return in_x || in_y ? HTML__LINK_CUT : HTML__LINK_OK;
    if (strcmp(f->kind, "split") == 0) return in_x != in_y ? HTML__LINK_CUT : HTML__LINK_OK;
    if (strcmp(f->kind, "one_way") == 0)
        return in_x && (html__target_set(f->detail, replicas) >> y & 1u) ? HTML__LINK_CUT
                                                                          : HTML__LINK_OK;
    if (strcmp(f->kind, "bridge") == 0) {
        const char *b = strstr(f->detail, "bridge=n");
        const unsigned long bridge = b != NULL ? strtoul(b + 8, NULL, 10) : ULONG_MAX;
        if (x == bridge || y == bridge) return HTML__LINK_OK;
        return in_x != in_y ? HTML__LINK_CUT : HTML__LINK_OK;
    }
    if (strcmp(f->kind, "ring") == 0) {
        /* faults__cut_ring: keep ring neighbours within k, 2k+1 a majority */
        const uint32_t k = (replicas / 2 + 1) / 2;
        const uint32_t d = x > y ? x - y : y - x;
        return (d < replicas - d ? d : replicas - d) > k ? HTML__LINK_CUT : HTML__LINK_OK;
    }
    if (strcmp(f->kind, "clog") == 0) return in_x || in_y ? HTML__LINK_CLOG : HTML__LINK_OK;
    if (strcmp(f->kind, "links") == 0) return in_x || in_y ? HTML__LINK_SLOW : HTML__LINK_OK;
    return HTML__LINK_OK;
}

/* The rows: every broker pair, then the client-broker links cut at least
 * once (in the order first cut). */
static void html__link_rows(const scn_result_t *r, uint32_t replicas, html__link_rows_t *rows) {
    rows->count = 0;
    for (uint32_t a = 0; a < replicas && a < HTML__BROKERS_MAX; a++)
        for (uint32_t b = a + 1; b < replicas && b < HTML__BROKERS_MAX; b++) {
            rows->lo[rows->count] = a;
            rows->hi[rows->count++] = b;
        }
    const uint32_t pairs = rows->count;
    for (uint32_t i = 0; i < r->timeline_count; i++) {
        const faults_event_t *f = &r->timeline[i];
        const long c = html__client_host(f->target);
        if (strcmp(f->kind, "partition_client") != 0 || c < (long)replicas) continue;
        const uint32_t set = html__target_set(f->detail, replicas);
        for (uint32_t b = 0; b < replicas && b < HTML__BROKERS_MAX; b++) {
            if (!(set >> b & 1u)) continue;
            bool seen = false;
            for (uint32_t k = pairs; k < rows->count && !seen; k++)
                seen = rows->lo[k] == b && rows->hi[k] == (uint32_t)c;
            if (seen || rows->count - pairs >= HTML__CLIENT_ROWS_MAX) continue;
            rows->lo[rows->count] = b;
            rows->hi[rows->count++] = (uint32_t)c;
        }
    }
}

static void html__host_name(char *buf, size_t cap, uint32_t host, uint32_t replicas) {
    if (host < replicas) snprintf(buf, cap, "n%" PRIu32, host);
    else snprintf(buf, cap, "host%" PRIu32, host);
}

/* When network fault i stops acting: the next heal, or its clog's end. */
static uint64_t html__fault_end(const scn_result_t *r, uint32_t i, uint64_t end_ns) {
    const faults_event_t *f = &r->timeline[i];
    uint64_t until = end_ns;
    for (uint32_t j = i + 1; j < r->timeline_count; j++)
        if (strcmp(r->timeline[j].kind, "heal_net") == 0 ||
            strcmp(r->timeline[j].kind, "heal") == 0) {
            until = r->timeline[j].time_ns;
            break;
        }
    const char *d = strcmp(f->kind, "clog") == 0 ? strstr(f->detail, "duration_ns=") : NULL;
    if (d != NULL) {
        const unsigned long long ns = strtoull(d + 12, NULL, 10);
        if (f->time_ns + ns < until) until = f->time_ns + ns;
    }
    return until > end_ns ? end_ns : until;
}

/* One half (or all, when both directions agree) of a link row. */
static void html__link_rect(FILE *out, const faults_event_t *f, int effect, const char *from,
                            const char *to, bool both, double x0, double x1, double y, double h,
                            uint64_t until) {
    fprintf(out, "<rect class=\"%s\" data-link=\"%s-%s\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
                 "height=\"%.1f\"><title>%s %s %s %s, by ",
            html__link_class[effect], from, to, x0, y, x1 - x0 > 1 ? x1 - x0 : 1, h, from,
            both ? "&#8596;" : "&#8594;", to, html__link_word[effect]);
    html__text(out, f->kind);
    fputc(' ', out);
    html__text(out, f->target);
    fputc(' ', out);
    html__text(out, f->detail);
    fprintf(out, " %.3fs-%.3fs</title></rect>\n", (double)f->time_ns / 1e9, (double)until / 1e9);
}

/* The link rows at y; returns their height. */
static double html__links(FILE *out, const scn_result_t *r, uint32_t replicas, uint64_t end_ns,
                          double y) {
    html__link_rows_t *rows = calloc(1, sizeof *rows);
    if (rows == NULL) return 0;
    html__link_rows(r, replicas, rows);
    fputs("<g class=\"links\">\n", out);
    for (uint32_t k = 0; k < rows->count; k++) {
        char lo[24], hi[24];
        html__host_name(lo, sizeof lo, rows->lo[k], replicas);
        html__host_name(hi, sizeof hi, rows->hi[k], replicas);
        const double ry = y + k * HTML__LINK_ROW_PX;
        fprintf(out, "<text x=\"2\" y=\"%.1f\" class=\"linklabel\">%s%s%s</text>"
                     "<line class=\"linkrow\" x1=\"%u\" x2=\"%u\" y1=\"%.1f\" y2=\"%.1f\"/>\n",
                ry + HTML__LINK_ROW_PX - 3, rows->hi[k] >= replicas ? hi : lo, "-",
                rows->hi[k] >= replicas ? lo : hi, HTML__LABEL_PX,
                HTML__LABEL_PX + SCN_HTML_WIDTH_PX,
                ry + HTML__LINK_ROW_PX / 2.0, ry + HTML__LINK_ROW_PX / 2.0);
        for (uint32_t i = 0; i < r->timeline_count; i++) {
            const faults_event_t *f = &r->timeline[i];
            const int fwd = html__link_effect(f, replicas, rows->lo[k], rows->hi[k]);
            const int back = html__link_effect(f, replicas, rows->hi[k], rows->lo[k]);
            if (fwd == HTML__LINK_OK && back == HTML__LINK_OK) continue;
            const uint64_t until = html__fault_end(r, i, end_ns);
            const double x0 = html__x(f->time_ns, end_ns), x1 = html__x(until, end_ns);
            const double half = (HTML__LINK_ROW_PX - 2) / 2.0;
            if (fwd == back) {
                html__link_rect(out, f, fwd, lo, hi, true, x0, x1, ry, 2 * half, until);
                continue;
            }
            if (fwd != HTML__LINK_OK)
                html__link_rect(out, f, fwd, lo, hi, false, x0, x1, ry, half, until);
            if (back != HTML__LINK_OK)
                html__link_rect(out, f, back, hi, lo, false, x0, x1, ry + half, half, until);
        }
    }
    fputs("</g>\n", out);
    const double height = (double)rows->count * HTML__LINK_ROW_PX;
    free(rows);
    return height;
}

/* ---- disk and clock faults: strips along the bottom of a broker's lane ----
 * A disk fault (disk_slow, disk_full, disk_read_errors) holds until the
 * next heal_disk / heal, or the same kind turned "off" for that broker; a
 * clock fault until the next heal or the broker's next clock event. */

#define HTML__STRIP_PX 5u

static bool html__is_disk_fault(const char *kind) {
    return strcmp(kind, "disk_slow") == 0 || strcmp(kind, "disk_full") == 0 ||
           strcmp(kind, "disk_read_errors") == 0;
}

static uint64_t html__state_end(const scn_result_t *r, uint32_t i, uint32_t lane, uint64_t end_ns) {
    const faults_event_t *f = &r->timeline[i];
    const bool disk = html__is_disk_fault(f->kind);
    for (uint32_t j = i + 1; j < r->timeline_count; j++) {
        const faults_event_t *g = &r->timeline[j];
        if (strcmp(g->kind, "heal") == 0 || (disk && strcmp(g->kind, "heal_disk") == 0))
            return g->time_ns;
        if (strcmp(g->kind, f->kind) != 0) continue;
        /* the same kind again on this broker ends this one (turned off or replaced) */
        if (html__target_set(g->target, HTML__BROKERS_MAX) >> lane & 1u) return g->time_ns;
    }
    return end_ns;
}

static void html__states(FILE *out, const scn_result_t *r, uint32_t replicas, uint64_t end_ns) {
    fputs("<g class=\"states\">\n", out);
    for (uint32_t i = 0; i < r->timeline_count; i++) {
        const faults_event_t *f = &r->timeline[i];
        const bool disk = html__is_disk_fault(f->kind);
        if (!disk && strcmp(f->kind, "clock") != 0) continue;
        /* the end of one (drawn with it), or a clock put back */
        if (strcmp(f->detail, "off") == 0 || strcmp(f->detail, "offset_ns=0 drift_ppm=0") == 0)
            continue;
        const uint32_t set = html__target_set(f->target, replicas);
        for (uint32_t lane = 0; lane < replicas && lane < HTML__BROKERS_MAX; lane++) {
            if (!(set >> lane & 1u)) continue;
            const uint64_t until = html__state_end(r, i, lane, end_ns);
            const double x0 = html__x(f->time_ns, end_ns), x1 = html__x(until, end_ns);
            fprintf(out, "<rect class=\"%s\" data-node=\"n%" PRIu32 "\" x=\"%.2f\" y=\"%.1f\" "
                         "width=\"%.2f\" height=\"%u\"><title>",
                    disk ? "disk-band" : "clock-band", lane, x0,
                    (double)(lane + 1) * SCN_HTML_LANE_PX - 2 - HTML__STRIP_PX,
                    x1 - x0 > 1 ? x1 - x0 : 1, HTML__STRIP_PX);
            html__text(out, f->kind);
            fprintf(out, " n%" PRIu32 " ", lane);
            html__text(out, f->detail);
            fprintf(out, " %.3fs-%.3fs</title></rect>\n", (double)f->time_ns / 1e9,
                    (double)until / 1e9);
        }
    }
    fputs("</g>\n", out);
}

/* A plot of one or two per-interval series (values already scaled to 0..1). */
static void html__plot(FILE *out, const char *title, const scn_result_t *r, uint64_t end_ns,
                       double (*value)(const report_sample_t *, double max), double max,
                       const char *cls) {
    fprintf(out, "<h3>");
    html__text(out, title);
    fprintf(out, "</h3>\n<svg class=\"plot\" width=\"%u\" height=\"%u\">\n",
            SCN_HTML_WIDTH_PX + HTML__LABEL_PX + 10, HTML__PLOT_PX + 10);
    fprintf(out, "<rect x=\"%u\" y=\"0\" width=\"%u\" height=\"%u\" class=\"frame\"/>\n",
            HTML__LABEL_PX, SCN_HTML_WIDTH_PX, HTML__PLOT_PX);
    fprintf(out, "<polyline class=\"%s\" points=\"", cls);
    for (size_t i = 0; i < r->series_count; i++) {
        const report_sample_t *s = &r->series[i];
        const double v = value(s, max);
        const uint64_t mid_ns = s->t_ns + s->interval_ns / 2;
        fprintf(out, "%.2f,%.2f ", html__x(mid_ns < end_ns ? mid_ns : end_ns, end_ns),
                HTML__PLOT_PX * (1.0 - (v < 0 ? 0 : v > 1 ? 1 : v)));
    }
    fputs("\"/>\n</svg>\n", out);
}

static double html__published(const report_sample_t *s, double max) {
    return max > 0 ? (double)s->published / max : 0;
}
static double html__confirmed(const report_sample_t *s, double max) {
    return max > 0 ? (double)s->confirmed / max : 0;
}
static double html__availability(const report_sample_t *s, double max) {
    (void)max;
    return s->availability;
}

typedef struct html__pub {
    uint64_t message_id, invoke_ns;
} html__pub_t;

static int html__pub_cmp(const void *a, const void *b) {
    const html__pub_t *x = a, *y = b;
    if (x->message_id != y->message_id) return x->message_id < y->message_id ? -1 : 1;
    return x->invoke_ns < y->invoke_ns ? -1 : x->invoke_ns > y->invoke_ns;
}

static int html__u64_cmp(const void *a, const void *b) {
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Publish -> confirm latency p50 and p99 per second of virtual time, from
 * the history (first invoke of a message id to its ok), as two polylines
 * on a linear scale up to the largest p99. */
static void html__latency(FILE *out, const history_t *h, uint64_t end_ns) {
    const uint64_t n = history_count(h);
    size_t pubs = 0, oks = 0;
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(h, i);
        if (r->op != HISTORY_OP_PUBLISH || r->message_id == 0) continue;
        if (r->kind == HISTORY_INVOKE) pubs++;
        else if (r->kind == HISTORY_OK) oks++;
    }
    const size_t seconds = (size_t)(end_ns / 1000000000u) + 1;
    html__pub_t *inv = calloc(pubs ? pubs : 1, sizeof *inv);
    uint64_t *lat = calloc(oks ? oks : 1, sizeof *lat);
    uint32_t *sec = calloc(oks ? oks : 1, sizeof *sec);
    if (inv == NULL || lat == NULL || sec == NULL) goto done;
    size_t k = 0, m = 0;
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(h, i);
        if (r->op == HISTORY_OP_PUBLISH && r->message_id != 0 && r->kind == HISTORY_INVOKE)
            inv[k++] = (html__pub_t){r->message_id, r->time_ns};
    }
    qsort(inv, k, sizeof *inv, html__pub_cmp);
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(h, i);
        if (r->op != HISTORY_OP_PUBLISH || r->message_id == 0 || r->kind != HISTORY_OK) continue;
        const html__pub_t key = {r->message_id, 0};
        /* the first invoke of this id: lower bound */
        size_t lo = 0, hi = k;
        while (lo < hi) {
            const size_t mid = (lo + hi) / 2;
            if (html__pub_cmp(&inv[mid], &key) < 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo == k || inv[lo].message_id != r->message_id || inv[lo].invoke_ns > r->time_ns) continue;
        lat[m] = r->time_ns - inv[lo].invoke_ns;
        sec[m] = (uint32_t)(r->time_ns / 1000000000u);
        m++;
    }
    /* per second: gather, sort, take the percentiles */
    double p50[HTML__SECONDS_MAX], p99[HTML__SECONDS_MAX], top = 1e6; /* at least 1 ms */
    const size_t shown = seconds < HTML__SECONDS_MAX ? seconds : HTML__SECONDS_MAX;
    uint64_t *bucket = calloc(m ? m : 1, sizeof *bucket);
    if (bucket == NULL) goto done;
    for (size_t s = 0; s < shown; s++) {
        size_t c = 0;
        for (size_t i = 0; i < m; i++)
            if (sec[i] == s) bucket[c++] = lat[i];
        p50[s] = p99[s] = -1;
        if (c == 0) continue;
        qsort(bucket, c, sizeof *bucket, html__u64_cmp);
        p50[s] = (double)bucket[(c - 1) / 2];
        p99[s] = (double)bucket[(c - 1) * 99 / 100];
        if (p99[s] > top) top = p99[s];
    }
    free(bucket);
    fprintf(out, "<h3>Publish &rarr; confirm latency per second: p50 (green), p99 (red); top = %.1f ms"
                 "</h3>\n<svg class=\"plot latency\" width=\"%u\" height=\"%u\">\n"
                 "<rect x=\"%u\" y=\"0\" width=\"%u\" height=\"%u\" class=\"frame\"/>\n",
            top / 1e6, SCN_HTML_WIDTH_PX + HTML__LABEL_PX + 10, HTML__PLOT_PX + 10, HTML__LABEL_PX,
            SCN_HTML_WIDTH_PX, HTML__PLOT_PX);
    for (int q = 0; q < 2; q++) {
        const double *v = q == 0 ? p50 : p99;
        fprintf(out, "<polyline class=\"%s\" points=\"", q == 0 ? "p50" : "p99");
        for (size_t s = 0; s < shown; s++) {
            if (v[s] < 0) continue;
            const uint64_t mid_ns = s * 1000000000ull + 500000000ull;
            fprintf(out, "%.2f,%.2f ", html__x(mid_ns < end_ns ? mid_ns : end_ns, end_ns),
                    HTML__PLOT_PX * (1.0 - v[s] / top));
        }
        fputs("\"/>\n", out);
    }
    fputs("</svg>\n", out);
done:
    free(inv);
    free(lat);
    free(sec);
}

static void html__invariants(FILE *out, const scn_result_t *r) {
    fputs("<h2>Invariants</h2>\n<table class=\"invariants\"><tr><th>invariant</th><th>found</th>"
          "<th>expected</th><th>figures</th></tr>\n", out);
    for (unsigned i = 0; r->judged && i < SCN_INV_COUNT; i++) {
        const scn_invariant_t *inv = &r->inv[i];
        fprintf(out, "<tr class=\"%s\"><td>%s</td><td>%s</td><td>%s</td><td>",
                inv->enforced && !inv->as_expected ? "bad" : "ok", scn_invariant_name(i),
                inv->passed ? "held" : "VIOLATED",
                !inv->enforced ? "(info)"
                : inv->expected == REPORT_EXPECT_VIOLATION ? "violated" : "held");
        html__text(out, inv->figures);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* Up front, what went wrong: each invariant that did not hold, whether the
 * run expected it (a teach file's weak side must break its lesson's), and
 * its figures; or why the run stopped. */
static void html__violated(FILE *out, const scn_result_t *r) {
    if (!r->judged) {
        if (r->stop_text[0] == '\0') return;
        fputs("<p class=\"violated\"><b>stopped:</b> ", out);
        html__text(out, r->stop_text);
        fputs("</p>\n", out);
        return;
    }
    fputs("<ul class=\"violated\">\n", out);
    bool any = false;
    for (unsigned i = 0; i < SCN_INV_COUNT; i++) {
        const scn_invariant_t *inv = &r->inv[i];
        if (inv->passed) continue;
        any = true;
        fprintf(out, "<li class=\"%s\"><b>%s violated</b> (%s): <code>",
                !inv->enforced ? "info" : inv->as_expected ? "expected" : "bad",
                scn_invariant_name(i),
                !inv->enforced ? "informational"
                : inv->as_expected ? "expected on this side" : "NOT as expected");
        html__text(out, inv->figures);
        fputs("</code></li>\n", out);
    }
    if (!any) fputs("<li>every invariant held</li>\n", out);
    fputs("</ul>\n", out);
}

int scn_html_write(FILE *out, const history_t *h, uint32_t replicas, const scn_result_t *r) {
    assert(out != NULL && h != NULL && r != NULL);
    const uint64_t end_ns = r->sim_time_ns ? r->sim_time_ns : 1;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>chaoslab ", out);
    html__text(out, r->scenario_name);
    fprintf(out, " seed %" PRIu64 "</title>\n<style>\n"
                 "body{font-family:sans-serif;margin:16px}pre{background:#f5f5f5;padding:8px;"
                 "overflow-x:auto}\n.label,.term{font-size:11px;font-family:monospace}"
                 ".term{fill:#fff}\n.fault-band{fill:#e53935;opacity:0.15}"
                 ".linklabel{font-size:10px;font-family:monospace}.linkrow{stroke:#e0e0e0}"
                 ".cut-link,.cut-key{fill:#d32f2f;background:#d32f2f;color:#fff}"
                 ".clog-link,.clog-key{fill:#7b1fa2;background:#7b1fa2;color:#fff}"
                 ".slow-link,.slow-key{fill:#fb8c00;background:#fb8c00}"
                 ".cut-key,.clog-key,.slow-key,.disk-key,.clock-key{padding:0 6px}\n"
                 ".disk-band,.disk-key{fill:#e65100;background:#e65100;color:#fff}"
                 ".clock-band,.clock-key{fill:#1565c0;background:#1565c0;color:#fff}\n"
                 "span.broke{color:#b71c1c;font-size:0.6em}ul.violated{font-size:13px;margin:4px 0}"
                 "ul.violated li.bad,ul.violated li.expected"
                 "{color:#b71c1c}ul.violated li.info{color:#555}\n"
                 ".fault{stroke:#b71c1c;stroke-width:1}\n.frame{fill:none;stroke:#ccc}"
                 "polyline{fill:none;stroke-width:1.5}.published{stroke:#1565c0}"
                 ".confirmed{stroke:#2e7d32}.availability{stroke:#6a1b9a}.p50{stroke:#2e7d32}.p99{stroke:#c62828}\n"
                 "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;"
                 "font-size:13px}tr.bad{background:#ffcdd2}\n</style></head><body>\n",
            r->seed);
    fputs("<h1>", out);
    html__text(out, r->scenario_name);
    fprintf(out, " &mdash; seed %" PRIu64 "%s%s: <span class=\"verdict\">%s</span>",
            r->seed, r->variant != SCN_VARIANT_NONE ? ", " : "",
            r->variant != SCN_VARIANT_NONE ? scn_variant_name(r->variant) : "",
            report_verdict_name(r->verdict));
    /* A teach file's weak side passes by failing: say which invariant broke. */
    for (unsigned i = 0, n = 0; r->judged && i < SCN_INV_COUNT; i++)
        if (r->inv[i].enforced && !r->inv[i].passed && r->inv[i].as_expected)
            fprintf(out, "%s%s", n++ ? ", " : " <span class=\"broke\">&mdash; broke ",
                    scn_invariant_name(i));
    for (unsigned i = 0; r->judged && i < SCN_INV_COUNT; i++)
        if (r->inv[i].enforced && !r->inv[i].passed && r->inv[i].as_expected) {
            fputs(", as this side must</span>", out);
            break;
        }
    fputs("</h1>\n", out);
    fputs("<p>strategy <code>", out);
    html__text(out, r->strategy);
    fprintf(out, "</code>; trace hash <code>%016" PRIx64 "</code>; %" PRIu64
                 " events over %.3f simulated seconds</p>\n<p>reproduce: <code class=\"reproduce\">",
            r->trace_hash, r->events, (double)r->sim_time_ns / 1e9);
    html__text(out, r->reproduce);
    fputs("</code></p>\n", out);
    html__violated(out, r);
    fputs("<h2>Timeline</h2>\n", out);
    const double lanes_px = (double)replicas * SCN_HTML_LANE_PX;
    html__link_rows_t *rows = calloc(1, sizeof *rows);
    if (rows != NULL) html__link_rows(r, replicas, rows);
    const double links_y = lanes_px + 6;
    const double links_px = rows != NULL ? (double)rows->count * HTML__LINK_ROW_PX : 0;
    free(rows);
    const double body_px = links_y + links_px;
    fprintf(out, "<svg class=\"timeline\" width=\"%u\" height=\"%.0f\">\n",
            SCN_HTML_WIDTH_PX + HTML__LABEL_PX + 10, body_px + 20);
    for (uint32_t i = 0; i < replicas; i++) html__lane(out, h, i, end_ns, i * SCN_HTML_LANE_PX);
    (void)html__links(out, r, replicas, end_ns, links_y);
    html__states(out, r, replicas, end_ns);
    html__faults(out, r, replicas, end_ns, 0, body_px);
    for (uint64_t s = 0; s * 1000000000u <= end_ns; s += 5)
        fprintf(out, "<text x=\"%.2f\" y=\"%.0f\" class=\"label\">%" PRIu64 "s</text>\n",
                html__x(s * 1000000000u, end_ns), body_px + 14, s);
    fputs("</svg>\n<p class=\"legend\">", out);
    for (unsigned k = 0; k < HISTORY_ROLE_COUNT; k++)
        fprintf(out, "<span style=\"background:%s;padding:0 6px;margin-right:4px\">%s</span>",
                html__role_color[k], history_role_name(k));
    fputs(" &nbsp;lanes: pale red bands = the brokers a network fault cut off, until its heal; "
          "red lines = fault actions; a strip along a lane's bottom = "
          "<span class=\"disk-key\">disk fault</span> (slow fsync, full, read errors) or "
          "<span class=\"clock-key\">clock skew</span> on that broker, until healed."
          "<br>links (a row per broker pair, and per client-broker "
          "link a fault cut): <span class=\"cut-key\">cut</span> "
          "<span class=\"clog-key\">clogged</span> <span class=\"slow-key\">lossy/slow</span>; "
          "a full row = both directions, the top half = the lower-named host &rarr; the other, "
          "the bottom half = the reverse (one-way cuts).</p>\n", out);
    double max = 1;
    for (size_t i = 0; i < r->series_count; i++) {
        if ((double)r->series[i].published > max) max = (double)r->series[i].published;
        if ((double)r->series[i].confirmed > max) max = (double)r->series[i].confirmed;
    }
    char title[128];
    snprintf(title, sizeof title, "Publishes per interval (top = %.0f)", max);
    html__plot(out, title, r, end_ns, html__published, max, "published");
    /* the confirm line goes into its own plot: two series, one scale */
    html__plot(out, "Confirms per interval (same scale)", r, end_ns, html__confirmed, max,
               "confirmed");
    html__plot(out, "Availability (confirmed share of attempts, 0..1)", r, end_ns,
               html__availability, 1, "availability");
    html__latency(out, h, end_ns);
    html__invariants(out, r);
    if (r->violations_text != NULL) {
        fputs("<h2>Violations</h2>\n<p>Each message's whole life: run the command after "
              "<q>its whole life</q> (docs/trace.md).</p>\n<pre class=\"violations\">", out);
        html__text(out, r->violations_text);
        fputs("</pre>\n", out);
    }
    fputs("</body></html>\n", out);
    return ferror(out) ? -1 : 0;
}

void scn_html_page_name(uint64_t seed, scn_variant_t variant, char *buf, size_t cap) {
    if (variant == SCN_VARIANT_NONE) snprintf(buf, cap, "seed-%" PRIu64 ".html", seed);
    else snprintf(buf, cap, "seed-%" PRIu64 "-%s.html", seed, scn_variant_name(variant));
}

int scn_html_index(FILE *out, const char *scenario_path, const scn_html_row_t *rows, size_t count) {
    assert(out != NULL && rows != NULL);
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>chaoslab sweep ", out);
    html__text(out, scenario_path);
    fputs("</title>\n<style>body{font-family:sans-serif;margin:16px}table{border-collapse:collapse}"
          "td,th{border:1px solid #ddd;padding:2px 6px;font-size:13px}tr.bad{background:#ffcdd2}"
          "</style></head><body>\n<h1>", out);
    html__text(out, scenario_path);
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) bad += rows[i].exit_code != 0;
    fprintf(out, "</h1>\n<p>%zu runs, %zu not as expected (each has a page of its own)</p>\n"
                 "<table class=\"runs\"><tr><th>seed</th><th>variant</th><th>verdict</th>"
                 "<th>violated</th><th>events</th><th>sim s</th><th>trace hash</th><th>page</th></tr>\n",
            count, bad);
    for (size_t i = 0; i < count; i++) {
        const scn_html_row_t *r = &rows[i];
        fprintf(out, "<tr class=\"run %s\"><td>%" PRIu64 "</td><td>%s</td><td>%s</td><td>",
                r->exit_code != 0 ? "bad" : "ok", r->seed,
                r->variant != SCN_VARIANT_NONE ? scn_variant_name(r->variant) : "",
                report_verdict_name(r->verdict));
        for (unsigned k = 0, n = 0; k < SCN_INV_COUNT; k++)
            if (r->violated & (1u << k)) fprintf(out, "%s%s", n++ ? ", " : "", scn_invariant_name(k));
        fprintf(out, "</td><td>%" PRIu64 "</td><td>%.3f</td><td><code>%016" PRIx64 "</code></td><td>",
                r->events, (double)r->sim_time_ns / 1e9, r->trace_hash);
        if (r->has_page) {
            char name[64];
            scn_html_page_name(r->seed, r->variant, name, sizeof name);
            fprintf(out, "<a href=\"%s\">%s</a>", name, name);
        }
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n</body></html>\n", out);
    return ferror(out) ? -1 : 0;
}

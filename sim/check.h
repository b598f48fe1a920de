/*
 * sim/check.h — invariant checkers over a run's history (DESIGN.md).
 *
 * Input: the history (sim/history.h) plus final facts the caller gathers at
 * the end of drain — per queue the message ids still enqueued and those
 * dead-lettered, per replica its commit index and a digest of its committed
 * state. Output: one check_result_t per invariant with a passed flag, named
 * figures (for reports and expectations) and up to CHECK_VIOLATIONS_MAX
 * violation records (message id, time, detail; violations_total counts all).
 *
 * Every checker is a pure function of its input: deterministic, no I/O, no
 * globals. Scratch memory is allocated and freed inside the call; if that
 * fails the checker returns IO_ENOMEM and the result says "not checked"
 * (passed = false, error = IO_ENOMEM). Record order is time order (the
 * history guarantees it), so "first" means earliest.
 *
 * Message identity: a logical message is its message_id. A publish op is the
 * records with op=publish for that id (invoke, then ok/fail/info). A
 * processed message is one with an op=process ok record.
 */
#ifndef CHAOSLAB_SIM_CHECK_H
#define CHAOSLAB_SIM_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/history.h"

#define CHECK_VIOLATIONS_MAX 32u /* violation records kept per result */
#define CHECK_FIGURES_MAX 24u    /* named figures per result */
#define CHECK_DETAIL_MAX 96u     /* bytes of a violation's detail incl. NUL */
#define CHECK_QUEUES_MAX HISTORY_QUEUES_MAX
#define CHECK_REPLICAS_MAX 16u
#define CHECK_FINAL_IDS_MAX (4u * 1024u * 1024u) /* ids per final list */
#define CHECK_INTERVALS_MAX 1000000u             /* time series buckets */
/* Availability is judged per window of this length (unless the input says
 * otherwise): long enough that a healthy cluster confirms something in each
 * (confirms take milliseconds), short enough to see a brief outage. */
#define CHECK_WINDOW_NS UINT64_C(100000000)      /* 100 ms */
#define CHECK_WINDOWS_MAX CHECK_INTERVALS_MAX    /* windows per check */

typedef struct check_figure {
    const char *name; /* static string, e.g. "lost" */
    double value;
} check_figure_t;

typedef struct check_violation {
    uint64_t message_id; /* 0 when not about a message (replicas: node id in detail) */
    uint64_t time_ns;    /* when it became visible, 0 = at the end */
    char detail[CHECK_DETAIL_MAX];
} check_violation_t;

typedef struct check_result {
    const char *name; /* "no_loss", ... (static) */
    bool passed;
    int error;        /* 0, or IO_ENOMEM / IO_EINVAL: the check did not run */
    uint32_t figures_count;
    check_figure_t figures[CHECK_FIGURES_MAX];
    uint64_t violations_total; /* all violations, recorded or not */
    uint32_t violations_count; /* recorded in violations[] */
    check_violation_t violations[CHECK_VIOLATIONS_MAX];
} check_result_t;

/* What a queue held at the end of drain (ids owned by the caller). */
typedef struct check_queue_final {
    const char *queue;               /* name as the clients used it */
    const uint64_t *enqueued_ids;    /* still in the queue (ready or unacked) */
    uint32_t enqueued_count;
    const uint64_t *dead_ids;        /* dead-lettered out of this queue */
    uint32_t dead_count;
} check_queue_final_t;

typedef struct check_replica_final {
    uint32_t node;
    uint64_t commit_index;
    uint64_t digest; /* of the committed/applied state at commit_index */
} check_replica_final_t;

/* Everything a check reads. Only `history` is required; the rest may be
 * zero/NULL (then the dependent figures are 0). */
typedef struct check_input {
    const history_t *history;
    const check_queue_final_t *queues;
    uint32_t queues_count;               /* <= CHECK_QUEUES_MAX */
    const check_replica_final_t *replicas;
    uint32_t replicas_count;             /* <= CHECK_REPLICAS_MAX */
    uint64_t chaos_start_ns;             /* t0 of the chaos window */
    uint64_t chaos_end_ns;               /* t1 (exclusive); 0 = end of history */
    uint64_t heal_ns;                    /* heal moment; 0 = no heal phase */
    uint64_t timeout_ns;                 /* client timeout: ok within it counts for
                                            attempt_success; 0 = any ok counts */
    uint64_t window_ns;                  /* availability window; 0 = CHECK_WINDOW_NS */
    double availability_min;             /* passed needs window share >= this, in [0,1] */
    double attempt_success_min;          /* passed needs attempt share >= this, [0,1] */
    double consumer_availability_min;    /* consumer_availability >= this, [0,1] */
    uint64_t max_gap_ns;                 /* passed needs longest gap <= this; 0 = off */
    uint64_t leaderless_max_ns;          /* longest leaderless stretch <= this; 0 = off */
    uint64_t leaderless_total_ns;        /* leaderless time in chaos <= this; 0 = off */
    uint64_t progress_bound_ns;          /* progress after heal_ns within this;
                                            0 = by the end of the history */
} check_input_t;

/* 0 if `in` is well formed, else IO_EINVAL (NULL history, counts over the
 * limits, NULL arrays with counts, NaN/out-of-range *_min shares,
 * chaos_end < chaos_start, more than CHECK_WINDOWS_MAX windows). Every
 * checker calls it first. */
int check_input_validate(const check_input_t *in);

/*
 * The checkers. Each fills *out (caller-owned) completely and returns 0, or
 * IO_EINVAL (bad input, out->error set) or IO_ENOMEM.
 *
 * no_loss: every message whose publish completed ok must be processed, or be
 *   dead-lettered (figure "dead_lettered"), by the end. One still enqueued
 *   at the end is "remaining": not lost (the queue holds it) but the drain
 *   did not reach it — not a violation here, see check_drained. One found
 *   nowhere is "lost", a violation. Accounting: every invoked publish ends
 *   confirmed (ok), nacked (fail flagged HISTORY_FLAG_NACKED: the broker
 *   refused it), failed (fail: gave up without it ever being stored) or
 *   unknown (info; unknown_at_end of them were still in flight when the run
 *   ended), or is "unfinished" (no outcome record: a caller that did not
 *   settle its clients). published = confirmed + nacked + failed + unknown +
 *   unfinished always. Figures: published, confirmed, nacked, failed,
 *   unknown, unknown_at_end, unfinished, processed_confirmed, dead_lettered,
 *   remaining, lost, recovered (non-ok publishes processed anyway),
 *   discarded (refused by a consumer without requeue), lost_unroutable (of
 *   lost, those confirmed with CONFIRM.unroutable: the declared queue itself
 *   was gone), dead_letter_processed,
 *   unconfirmed (fire-and-forget publishes: info flagged
 *   HISTORY_FLAG_UNCONFIRMED, never evidence of loss), unconfirmed_missing
 *   (of those, never processed, dead-lettered nor still queued).
 * drained: no confirmed message is still enqueued at the end (the drain
 *   phase was long enough and consumers kept up). Figures: remaining,
 *   confirmed.
 * no_duplicates: no message id processed more than once. Figures:
 *   processed_messages, duplicate_processings (extra process records),
 *   duplicate_enqueues (extra non-redelivered deliveries of one id: the
 *   broker stored it twice), redeliveries (deliveries flagged redelivered).
 *   Passed iff duplicate_processings == 0.
 * no_phantoms: every delivered id was published (invoked). Figures:
 *   delivered_messages, phantoms, failed_delivered (a definite fail that was
 *   delivered anyway: reported, not a violation).
 * ordering: per (queue, producer), first deliveries must come in increasing
 *   sequence order; a first delivery whose sequence is below the highest
 *   already seen is one inversion. Figures: streams, checked, inversions.
 * availability: time-based, over [chaos_start, chaos_end) cut into windows
 *   of window_ns (the last one may be shorter). A window is available when
 *   at least one publish ok lands in it; unavailable when none does while
 *   some publish was pending (invoked at or before the window's start, not
 *   completed before its end) for the whole window: a client waited a full
 *   window and the cluster confirmed nothing — however rarely that client
 *   could try; idle otherwise (nothing asked, no evidence either way).
 *   availability = available / (available + unavailable), 0 when no window
 *   was judged (an empty chaos phase proves nothing, it never reads 100%).
 *   Also the attempt-based share (publishes invoked in the window confirmed
 *   within timeout_ns: attempt_success, 1 when none), the longest stretch
 *   with no confirm and the time from heal_ns to the first confirm after it.
 *   Figures: windows, available_windows, unavailable_windows, idle_windows,
 *   availability, attempts, confirmed_in_time, attempt_success,
 *   longest_gap_ns, heal_to_ok_ns (-1 when no confirm after heal).
 * consumer_availability: the same windows, for the consuming side. A window
 *   is available when at least one delivery lands in it; unavailable when
 *   none does while a confirmed message was ready (confirmed before the
 *   window's start, first delivered after its end or never; dead-lettered
 *   ones excluded) for the whole window; idle otherwise. Figures: windows,
 *   available_windows, unavailable_windows, idle_windows,
 *   consumer_availability (0 when none judged).
 * leaderless: from the HISTORY_OP_REPLICA samples. Each sample's state holds
 *   until the next sample; "leaderless" = no broker in the sample has role
 *   LEADER. Over [chaos_start, chaos_end): leaderless_ns (total),
 *   leaderless_max_ns (longest stretch), leaderless_share, leader_changes
 *   (the leader's identity changed, none counting as an identity), samples.
 *   With no samples the time figures are -1 and a bound is a violation.
 * progress: after heal_ns (skipped when heal_ns == 0), within
 *   progress_bound_ns (0 = the end of the history): a sample with a leader;
 *   a sample with a leader in which every live broker (role not down,
 *   paused or failed; a recovering one lags) has a commit index >=
 *   target_commit, the leader's commit index in the first sample after heal
 *   with a leader (liveness, not safety: entries a weak strategy lost are
 *   no_loss's business); and, when a publish
 *   was pending at heal or invoked after it, a publish ok. Any of them
 *   missing is a violation ("never recovered") — unless, at the last sample
 *   in the bound, a majority of brokers has damaged storage (failed, or a
 *   corrupt log that may not vote): then no leader can be elected safely,
 *   liveness is beyond the fault model and not judged (beyond_fault_model =
 *   1, passed). Figures: bound_ns, heal_to_leader_ns, heal_to_caught_up_ns,
 *   heal_to_ok_ns (-1 = never or not needed), confirm_needed,
 *   target_commit, live_replicas, lagging (live brokers below target at the
 *   last sample in the bound), failed_replicas, damaged_replicas,
 *   beyond_fault_model, samples.
 * replica_agreement: every replica at the highest commit index has the same
 *   digest as the first such replica (array order). Figures: replicas,
 *   highest_commit, at_highest, lagging, mismatches.
 * latency: publish->confirm and publish->first process, p50/p99/max in ns
 *   (nearest rank). Always passes; figures only.
 */
int check_no_loss(const check_input_t *in, check_result_t *out);
int check_no_duplicates(const check_input_t *in, check_result_t *out);
int check_no_phantoms(const check_input_t *in, check_result_t *out);
int check_ordering(const check_input_t *in, check_result_t *out);
int check_availability(const check_input_t *in, check_result_t *out);
int check_replica_agreement(const check_input_t *in, check_result_t *out);
int check_latency(const check_input_t *in, check_result_t *out);
int check_consumer_availability(const check_input_t *in, check_result_t *out);
int check_leaderless(const check_input_t *in, check_result_t *out);
int check_progress(const check_input_t *in, check_result_t *out);
int check_drained(const check_input_t *in, check_result_t *out);

/* Positions in check_all's output. */
enum {
    CHECK_NO_LOSS = 0, CHECK_NO_DUPLICATES, CHECK_NO_PHANTOMS, CHECK_ORDERING,
    CHECK_AVAILABILITY, CHECK_REPLICA_AGREEMENT, CHECK_LATENCY,
    CHECK_CONSUMER_AVAILABILITY, CHECK_LEADERLESS, CHECK_PROGRESS, CHECK_DRAINED,
};
#define CHECK_ALL_COUNT 11u
/* Run the checkers in the order of the CHECK_* positions into
 * out[0..CHECK_ALL_COUNT). Returns 0 or the first error (every result is
 * still filled). */
int check_all(const check_input_t *in, check_result_t out[CHECK_ALL_COUNT]);

/* Value of figure `name` in `r`, or NAN when absent. */
double check_figure(const check_result_t *r, const char *name);

/* One readable line, e.g.
 *   "no_loss PASS confirmed=10 lost=0 ... violations=0 [ids 0x1 0x2]"
 * into buf (snprintf semantics), and the same to a FILE (the only I/O here,
 * for the CLI). */
int check_result_format(const check_result_t *r, char *buf, size_t cap);
void check_result_print(const check_result_t *r, FILE *out);

/* ---- time series -------------------------------------------------------- */

typedef struct check_interval {
    uint64_t start_ns;      /* bucket [start_ns, start_ns + interval) */
    uint64_t published;     /* publish invokes */
    uint64_t confirmed;     /* publish ok records */
    uint64_t failed;        /* publish fail + info records */
    uint64_t consumed;      /* process ok records */
    uint64_t windows;       /* CHECK_WINDOW_NS windows (from time 0) in the bucket */
    uint64_t available_windows; /* of them, with at least one publish ok */
    double availability;    /* available_windows / windows: a second in which
                               nothing was confirmed reads 0, never 1 */
} check_interval_t;

/* Bucket the history from time 0 to end_ns (0 = last record) by
 * interval_ns into out[0..cap). Returns the number of buckets written, or
 * IO_EINVAL (interval 0, bad input, more than cap or CHECK_INTERVALS_MAX
 * buckets needed), IO_ENOMEM. */
int64_t check_time_series(const check_input_t *in, uint64_t interval_ns,
                          uint64_t end_ns, check_interval_t *out, uint64_t cap);

#endif

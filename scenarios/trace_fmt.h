/*
 * scenarios/trace_fmt.h — the decoded trace: one line per simulator event,
 * in domain terms (docs/trace.md is the format's reference).
 *
 * The kernel's observer reports raw events ("msg from=0 len=312", "disk
 * op=write ..."); this module turns each into a line that names what
 * happened: the wire message decoded (AppendEntries term, prev index/term,
 * entry range, commit, the message ids inside; PUBLISH with message id and
 * producer/sequence; ...), log writes and fsyncs with the indexes they carry,
 * role changes with their term, fault actions, and network drops with the
 * reason. Two renderings of the same fields: text (TIME HOST EVENT k=v ...)
 * and JSON lines (one object per line).
 *
 * It also follows one message (trace_fmt_focus): every line that touches it
 * is flagged, and trace_fmt_focus_summary says where its life ended. For
 * that it keeps a little state per host (last log index written, durable
 * index, where the message landed in each log).
 *
 * Decoding only reads the event: it never feeds back into the simulation,
 * so the trace hash is the same with or without it.
 */
#ifndef CHAOSLAB_SCENARIOS_TRACE_FMT_H
#define CHAOSLAB_SCENARIOS_TRACE_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TRACE_FMT_LINE_MAX 2048u     /* one rendered line, newline included */
#define TRACE_FMT_FIELDS_MAX 24u     /* fields of one line */
#define TRACE_FMT_VALUE_MAX 320u     /* one field's value */
#define TRACE_FMT_IDS_SHOWN_MAX 8u   /* message ids listed per batch line */
#define TRACE_FMT_HOSTS_MAX 64u      /* hosts followed (brokers + clients) */
#define TRACE_FMT_TAGS_MAX 64u       /* deliveries of the focus message followed */
#define TRACE_FMT_CONTEXT_MAX 8u     /* context lines kept from before the first touch */

typedef enum trace_fmt_kind {
    TRACE_FMT_TEXT = 0,
    TRACE_FMT_JSON = 1,
} trace_fmt_kind_t;

/* "text" or "json" -> 0 and *out; anything else -> -1. */
int trace_fmt_parse(const char *name, trace_fmt_kind_t *out);

/* One observed event. bytes/len: the message or written bytes
 * (sim_observed_bytes), NULL if none. term/role: for io trace events of a
 * broker, the node's term and raft role after the event (role_name NULL =
 * unknown). */
typedef struct trace_fmt_event {
    uint64_t time_ns;
    uint32_t host;          /* SIM_ANY for world events */
    const char *kind;       /* the kernel's kind, or "fault" / "log" */
    const char *detail;     /* the kernel's detail, or the fault's text */
    const uint8_t *bytes;
    size_t len;
    uint64_t term;
    const char *role_name;
    const char *fault_target; /* kind "fault": the target set ("n0,n2") */
} trace_fmt_event_t;

typedef struct trace_fmt trace_fmt_t;

/* replicas: hosts [0, replicas) are brokers n0.., the rest clients c0... */
trace_fmt_t *trace_fmt_new(uint32_t replicas, trace_fmt_kind_t kind);
void trace_fmt_free(trace_fmt_t *tf);

/* Follow message `message_id` (0 = none). */
void trace_fmt_focus(trace_fmt_t *tf, uint64_t message_id);

/* Render `ev` into buf (NUL-terminated, ends in '\n'; cut at cap). Returns
 * the length. *touches (may be NULL) = 1 when the event touched the focus
 * message, 2 when it is context for it (a fault, a scenario note, a
 * leadership or host lifecycle change after its first publish), else 0.
 * Updates the per-host state, so every event must pass through
 * here in order, even ones that are not written. */
size_t trace_fmt_line(trace_fmt_t *tf, const trace_fmt_event_t *ev, char *buf, size_t cap,
                      int *touches);

/* Print (and forget) the last TRACE_FMT_CONTEXT_MAX context lines seen
 * before the focus message's first event: the faults that set the scene. */
void trace_fmt_focus_context(trace_fmt_t *tf, FILE *out);

/* Print where the focus message's life ended (text, several lines). */
void trace_fmt_focus_summary(const trace_fmt_t *tf, FILE *out);

#endif

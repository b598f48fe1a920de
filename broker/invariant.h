/*
 * broker/invariant.h — core invariants that stay checked in every build.
 *
 * `assert` disappears under NDEBUG (Release, RelWithDebInfo), so a simulation
 * run would check nothing. Invariants whose violation means the broker is
 * wrong (Raft: commit <= durable last index, one vote per term, log matching;
 * node and session tables consistent; the state machine's own checker) use
 * BROKER_INVARIANT instead, which is never compiled out.
 *
 * What happens when one trips is the world's choice, made through a handler:
 *   - the simulator installs one that ends the run with verdict `invariant`
 *     (message and reproduce line stored in the report) instead of aborting
 *     the process and losing the report;
 *   - with no handler (the real runtime, unit tests) the message goes to
 *     stderr and the process aborts: a programmer error, per DESIGN.md.
 *
 * The handler is per thread (thread-local), not per node: the check sits deep
 * in code that has no io table at hand (log.c, sm.c), and a simulation runs on
 * one thread, so "the run on this thread" is exactly the right scope. This is
 * the one piece of thread-local state in the core, and it only routes failure
 * reports; no behaviour depends on it.
 *
 * A handler must not return (it longjmps out of the run, or aborts); if it
 * does return, broker_invariant_fail aborts anyway.
 */
#ifndef CHAOSLAB_BROKER_INVARIANT_H
#define CHAOSLAB_BROKER_INVARIANT_H

/* file and expr are static strings; msg is a short static explanation. */
typedef void (*broker_invariant_fn)(void *ctx, const char *file, int line,
                                    const char *expr, const char *msg);

/* Installs fn (with its ctx) for the calling thread; NULL restores the
 * default (print and abort). Returns nothing; cannot fail. */
void broker_invariant_set_handler(broker_invariant_fn fn, void *ctx);

/* Reports a tripped invariant to the thread's handler. Never returns. */
_Noreturn void broker_invariant_fail(const char *file, int line,
                                     const char *expr, const char *msg);

/* Number of BROKER_INVARIANT checks evaluated on this thread (for the cost
 * figure in bench/bench_scenario; counting is one add). */
unsigned long long broker_invariant_checks(void);
extern _Thread_local unsigned long long broker_invariant__count;

#define BROKER_INVARIANT(cond, msg)                                          \
    do {                                                                     \
        broker_invariant__count++;                                           \
        if (__builtin_expect(!(cond), 0))                                    \
            broker_invariant_fail(__FILE__, __LINE__, #cond, (msg));         \
    } while (0)

#endif

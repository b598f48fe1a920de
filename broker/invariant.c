/* broker/invariant.c — routing of tripped core invariants (see invariant.h). */
#include "broker/invariant.h"

#include <stdio.h>
#include <stdlib.h>

_Thread_local unsigned long long broker_invariant__count;
static _Thread_local broker_invariant_fn invariant_fn;
static _Thread_local void *invariant_ctx;

void broker_invariant_set_handler(broker_invariant_fn fn, void *ctx) {
    invariant_fn = fn;
    invariant_ctx = ctx;
}

unsigned long long broker_invariant_checks(void) {
    return broker_invariant__count;
}

_Noreturn void broker_invariant_fail(const char *file, int line,
                                     const char *expr, const char *msg) {
    broker_invariant_fn fn = invariant_fn;
    if (fn != NULL) {
        /* Clear first: a handler that trips another invariant while it
         * unwinds must not recurse forever. */
        invariant_fn = NULL;
        fn(invariant_ctx, file, line, expr, msg);
    }
    fprintf(stderr, "chaoslab: invariant failed at %s:%d: %s (%s)\n",
            file, line, msg ? msg : "", expr);
    abort();
}

/* cli/cmd_shrink.c — `chaoslab shrink SCENARIO.lua --seed N ...`: argument
 * parsing and the summary; the search is scenarios/shrink.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "scenarios/shrink.h"

#define SHRINK_CLI_OUT_MAX 1024u

static void shrink_usage(FILE *out) {
    fprintf(out,
            "usage: chaoslab shrink SCENARIO.lua --seed N [options]\n\n"
            "Shrinks one failing run to a minimal standalone scenario. The run's\n"
            "concrete fault schedule (nemesis draws and at()/every() actions, with their\n"
            "targets and parameters) becomes explicit at() actions; then fault steps,\n"
            "single fault calls, producers, consumers, messages, rates, phase lengths\n"
            "and the time between faults are removed or lowered, and a change is kept\n"
            "only if the same invariant still fails. Deterministic: the same inputs\n"
            "give the same file (unless the wall budget stops the search first).\n"
            "A progress line per kept change goes to stderr.\n\n"
            "  --seed N             the failing seed (required)\n"
            "  --variant weak|strong  one side of a teach{} scenario (teach files: required\n"
            "                       to be weak or strong; default weak)\n"
            "  --invariant NAME     the invariant to keep failing (default: the lesson's\n"
            "                       for a weak side, else the first that failed), one of\n"
            "                       no_loss no_duplicates no_phantoms ordering\n"
            "                       replica_agreement availability recovery max_unavailable\n"
            "                       attempt_success consumer_availability leaderless\n"
            "                       progress drained latency duplicate_enqueues\n"
            "  --budget S           wall seconds for the whole search (default %.0f)\n"
            "  --max-trials N       trial runs at most (default %u)\n"
            "  -o, --output FILE    the shrunk scenario (default NAME_shrunk_seedN.lua)\n\n"
            "It prints the sizes before and after (fault calls, at() steps, clients,\n"
            "messages published, simulated seconds) and the command that runs the file:\n"
            "  chaoslab run FILE --seed N      (add --message ID or --html PAGE.html)\n\n"
            "exit codes: 0 shrunk and written (the file fails the invariant on its own),\n"
            "            1 nothing to shrink: the run does not fail (a safe strategy,\n"
            "              a passing seed, or the named invariant held) or it stalled,\n"
            "            2 bad usage, a broken scenario or an unwritable output\n",
            SHRINK_BUDGET_S_DEFAULT, SHRINK_TRIALS_DEFAULT);
}

static int shrink_invariant_arg(const char *name, int *out) {
    *out = scn_invariant_parse(name);
    if (*out >= 0) return 0;
    const char *hint = NULL;
    for (unsigned i = 0; i < SCN_INV_COUNT; i++)
        if (scn_edit_distance(name, scn_invariant_name(i)) <= 2) hint = scn_invariant_name(i);
    if (hint != NULL)
        return cli_usage_error("shrink", "unknown invariant '%s' (did you mean '%s'?)", name, hint);
    return cli_usage_error("shrink", "unknown invariant '%s'", name);
}

static int shrink_budget_arg(const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    const double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v > 0) || v > SHRINK_BUDGET_S_MAX)
        return cli_usage_error("shrink", "--budget wants seconds above 0, at most %.0f, not '%s'",
                               SHRINK_BUDGET_S_MAX, text);
    *out = v;
    return 0;
}

static void shrink_print_size(const char *label, const shrink_size_t *z) {
    printf("%-8s faults %" PRIu32 "  at() steps %" PRIu32 "  clients %" PRIu32
           "  messages %" PRIu64 "  simulated %.1fs\n",
           label, z->faults, z->steps, z->clients, z->messages, z->sim_s);
}

int cli_cmd_shrink(int argc, char **argv) {
    shrink_opts_t o = {.invariant = -1, .budget_s = SHRINK_BUDGET_S_DEFAULT,
                       .max_trials = SHRINK_TRIALS_DEFAULT, .progress = stderr};
    bool have_seed = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            shrink_usage(stdout);
            return CLI_EXIT_OK;
        }
        const bool has_value = i + 1 < argc;
        if (a[0] != '-') {
            if (o.path != NULL) return cli_usage_error("shrink", "one scenario file, not '%s'", a);
            o.path = a;
        } else if (!has_value) {
            return cli_usage_error("shrink", "%s needs a value (or is unknown)", a);
        } else if (strcmp(a, "--seed") == 0) {
            if (cli_parse_u64(argv[++i], &o.seed) != 0)
                return cli_usage_error("shrink", "--seed wants a number, not '%s'", argv[i]);
            have_seed = true;
        } else if (strcmp(a, "--variant") == 0) {
            const char *v = argv[++i];
            if (strcmp(v, "weak") == 0) o.variant = SCN_VARIANT_WEAK;
            else if (strcmp(v, "strong") == 0) o.variant = SCN_VARIANT_STRONG;
            else return cli_usage_error("shrink", "--variant wants weak or strong, not '%s'", v);
        } else if (strcmp(a, "--invariant") == 0) {
            if (shrink_invariant_arg(argv[++i], &o.invariant) != 0) return CLI_EXIT_USAGE;
        } else if (strcmp(a, "--budget") == 0) {
            if (shrink_budget_arg(argv[++i], &o.budget_s) != 0) return CLI_EXIT_USAGE;
        } else if (strcmp(a, "--max-trials") == 0) {
            uint64_t n = 0;
            if (cli_parse_u64(argv[++i], &n) != 0 || n == 0 || n > SHRINK_TRIALS_MAX)
                return cli_usage_error("shrink", "--max-trials wants 1..%u, not '%s'",
                                       SHRINK_TRIALS_MAX, argv[i]);
            o.max_trials = (uint32_t)n;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            o.out_path = argv[++i];
        } else {
            return cli_usage_error("shrink", "unknown option '%s'", a);
        }
    }
    if (o.path == NULL) return cli_usage_error("shrink", "which scenario? (a .lua file)");
    if (!have_seed) return cli_usage_error("shrink", "--seed N is required (the failing seed)");
    char def_out[SHRINK_CLI_OUT_MAX];
    if (o.out_path == NULL) {
        const char *base = strrchr(o.path, '/');
        base = base != NULL ? base + 1 : o.path;
        const size_t len = strlen(base) > 4 && strcmp(base + strlen(base) - 4, ".lua") == 0
                               ? strlen(base) - 4 : strlen(base);
        snprintf(def_out, sizeof def_out, "%.*s_shrunk_seed%" PRIu64 ".lua", (int)len, base, o.seed);
        o.out_path = def_out;
    }
    shrink_result_t *r = calloc(1, sizeof *r);
    if (r == NULL) return CLI_EXIT_USAGE;
    const int rc = shrink_run(&o, r);
    int exit_code = CLI_EXIT_OK;
    if (rc != 0) {
        fprintf(stderr, "chaoslab shrink: %s\n", r->err);
        exit_code = rc == 1 ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
    } else {
        printf("shrunk %s seed %" PRIu64 "%s%s: %s still fails\n", o.path, o.seed,
               o.variant != SCN_VARIANT_NONE ? " variant " : "", scn_variant_name(o.variant),
               scn_invariant_name((unsigned)r->invariant));
        shrink_print_size("before", &r->before);
        shrink_print_size("after", &r->after);
        printf("trials   %" PRIu32 " (%" PRIu32 " kept) in %.1fs%s\n", r->trials, r->kept,
               r->wall_s, r->budget_hit ? " (stopped by the budget)" : "");
        printf("replay   trace %016" PRIx64 " (the run: %016" PRIx64 ", %s)\n", r->replay_hash,
               r->trace_hash, r->replay_hash == r->trace_hash ? "same" : "differs");
        printf("wrote    %s\nrun it:  %s\n", o.out_path, r->command);
    }
    free(r);
    return exit_code;
}

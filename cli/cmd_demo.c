/* cli/cmd_demo.c — `chaoslab demo`: the simulation-kernel demo. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "sim/demo.h"

static void demo_usage(FILE *out) {
    fprintf(out,
            "usage: chaoslab demo [--seed N]\n\n"
            "Runs three simulated hosts exchanging messages over the virtual\n"
            "network under loss, a partition, a pause and a crash with recovery\n"
            "from the virtual disk, then prints what was simulated and the trace\n"
            "hash. The same seed always prints the same hash.\n\n"
            "  --seed N   run seed (default 1)\n");
}

int cli_cmd_demo(int argc, char **argv) {
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            demo_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            if (cli_parse_u64(argv[++i], &seed) != 0) {
                fprintf(stderr, "chaoslab demo: --seed wants a number, got '%s'\n", argv[i]);
                return CLI_EXIT_USAGE;
            }
            continue;
        }
        fprintf(stderr, "chaoslab demo: unexpected argument '%s'\n", argv[i]);
        demo_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return sim_demo_run(seed, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/*
 * cli/broker_flags.h — the strategy flags `chaoslab broker` and
 * `chaoslab cluster` share: --acks, --fsync, --election, --dedup and
 * --set key=value (any key broker_config_set knows). `cluster` applies them
 * to check them, then hands the same words to each child `broker`.
 */
#ifndef CHAOSLAB_CLI_BROKER_FLAGS_H
#define CHAOSLAB_CLI_BROKER_FLAGS_H

#include <stdio.h>

#include "broker/node.h"

#define CLI_STRATEGY_WORDS_MAX 64 /* flag words kept for forwarding */

typedef struct cli_strategy {
    broker_config_t cfg;                        /* defaults + the flags */
    const char *words[CLI_STRATEGY_WORDS_MAX];  /* argv words, borrowed */
    int words_count;
    int replicas_set;                           /* --set replicas=N seen */
} cli_strategy_t;

/* Defaults (broker_config_default) and no words. */
void cli_strategy_init(cli_strategy_t *st);

/* If argv[*i] is a strategy flag, apply it with its value argv[*i + 1],
 * keep both words and advance *i past the value. Returns 1 (consumed), 0
 * (not a strategy flag: *i untouched) or -1 (bad value or missing value: a
 * message naming `cmd` was printed on stderr). */
int cli_strategy_flag(cli_strategy_t *st, int argc, char **argv, int *i,
                      const char *cmd);

/* The help lines for the strategy flags. */
void cli_strategy_usage(FILE *out);

#endif

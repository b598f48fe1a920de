/* cli/broker_flags.c — strategy flags shared by `broker` and `cluster`. */
#include "cli/broker_flags.h"

#include <assert.h>
#include <string.h>

#define CLI_STRATEGY_KEY_MAX 63u

void cli_strategy_init(cli_strategy_t *st) {
    assert(st != NULL);
    memset(st, 0, sizeof *st);
    broker_config_default(&st->cfg);
}

/* "--acks" -> "acks"; NULL if argv word is not one of the named flags. */
static const char *cli_strategy__key(const char *flag) {
    static const char *const named[] = {"--acks", "--fsync", "--election", "--dedup"};
    for (size_t k = 0; k < sizeof named / sizeof named[0]; k++)
        if (strcmp(flag, named[k]) == 0) return named[k] + 2;
    return NULL;
}

static int cli_strategy__apply(cli_strategy_t *st, const char *key, const char *value,
                               const char *cmd) {
    char err[256];
    if (broker_config_set(&st->cfg, key, value, err, sizeof err) != 0) {
        fprintf(stderr, "chaoslab %s: %s\n", cmd, err);
        return -1;
    }
    if (strcmp(key, "replicas") == 0) st->replicas_set = 1;
    return 0;
}

int cli_strategy_flag(cli_strategy_t *st, int argc, char **argv, int *i,
                      const char *cmd) {
    assert(st != NULL && argv != NULL && i != NULL && *i < argc);
    const char *flag = argv[*i];
    const char *key = cli_strategy__key(flag);
    const int is_set = strcmp(flag, "--set") == 0;
    if (key == NULL && !is_set) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "chaoslab %s: %s needs a value\n", cmd, flag);
        return -1;
    }
    const char *value = argv[*i + 1];
    int rc;
    if (is_set) {
        const char *eq = strchr(value, '=');
        if (eq == NULL || eq == value || (size_t)(eq - value) > CLI_STRATEGY_KEY_MAX) {
            fprintf(stderr, "chaoslab %s: --set wants key=value, got '%s'\n", cmd, value);
            return -1;
        }
        char k[CLI_STRATEGY_KEY_MAX + 1];
        memcpy(k, value, (size_t)(eq - value));
        k[eq - value] = '\0';
        rc = cli_strategy__apply(st, k, eq + 1, cmd);
    } else {
        rc = cli_strategy__apply(st, key, value, cmd);
    }
    if (rc != 0) return -1;
    if (st->words_count + 2 > CLI_STRATEGY_WORDS_MAX) {
        fprintf(stderr, "chaoslab %s: more than %d strategy flags\n", cmd,
                CLI_STRATEGY_WORDS_MAX / 2);
        return -1;
    }
    st->words[st->words_count++] = flag;
    st->words[st->words_count++] = value;
    *i += 1;
    return 1;
}

void cli_strategy_usage(FILE *out) {
    fprintf(out,
            "strategies (see docs/broker.md):\n"
            "  --acks leader|quorum          confirm after the leader's append, or after\n"
            "                                commit on a majority (default quorum)\n"
            "  --fsync always|never|interval:MS\n"
            "                                fdatasync before confirming (group commit),\n"
            "                                never, or on a timer (default always)\n"
            "  --election safe|unclean       Raft vote rule, or any live replica may lead\n"
            "                                (default safe)\n"
            "  --dedup on|off                drop re-sent publishes by (producer, sequence)\n"
            "                                (default on)\n"
            "  --set KEY=VALUE               any strategy key: delivery_limit,\n"
            "                                session_timeout_ms, ack_timeout_ms,\n"
            "                                election_timeout_ms, heartbeat_ms,\n"
            "                                snapshot_every, pre_vote, check_quorum\n");
}

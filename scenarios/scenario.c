/* scenarios/scenario.c — strategy layers, seed ranges and names shared by
 * the Lua binding, the engine and the CLI. */
#include "scenarios/scenario.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Client-side strategy keys: not broker settings, applied by the engine to
 * the simulated clients (a teach pair may compare consumer ack modes). */
static bool scn__client_key(const char *key) { return strcmp(key, "ack") == 0; }

int scn_strategy_set(scn_strategy_t *s, const char *key, const char *value,
                     char *err, size_t err_cap) {
    assert(s != NULL && s->count <= SCN_KV_MAX);
    assert(key != NULL && value != NULL);
    if (strlen(key) >= SCN_KEY_MAX || strlen(value) >= SCN_VALUE_MAX) {
        snprintf(err, err_cap, "strategy setting '%s' is too long", key);
        return -1;
    }
    if (scn__client_key(key)) {
        if (strcmp(value, "manual") != 0 && strcmp(value, "auto") != 0) {
            snprintf(err, err_cap, "bad value '%s' for ack (want manual|auto)", value);
            return -1;
        }
    } else {
        /* Validate against the broker's own parser so every layer (Lua,
         * CLI, teach sides) accepts exactly what broker_config_set does. */
        broker_config_t scratch;
        broker_config_default(&scratch);
        if (broker_config_set(&scratch, key, value, err, err_cap) != 0) return -1;
    }
    for (uint32_t i = 0; i < s->count; i++) {
        if (strcmp(s->kv[i].key, key) == 0) {
            snprintf(s->kv[i].value, sizeof s->kv[i].value, "%s", value);
            return 0;
        }
    }
    if (s->count >= SCN_KV_MAX) {
        snprintf(err, err_cap, "too many strategy settings (max %u)", SCN_KV_MAX);
        return -1;
    }
    snprintf(s->kv[s->count].key, SCN_KEY_MAX, "%s", key);
    snprintf(s->kv[s->count].value, SCN_VALUE_MAX, "%s", value);
    s->count++;
    return 0;
}

int scn_strategy_set_pair(scn_strategy_t *s, const char *pair, char *err,
                          size_t err_cap) {
    assert(s != NULL && pair != NULL);
    const char *eq = strchr(pair, '=');
    if (eq == NULL || eq == pair || eq[1] == '\0') {
        snprintf(err, err_cap, "expected key=value, got '%s'", pair);
        return -1;
    }
    char key[SCN_KEY_MAX];
    const size_t klen = (size_t)(eq - pair);
    if (klen >= sizeof key) {
        snprintf(err, err_cap, "key too long in '%s'", pair);
        return -1;
    }
    memcpy(key, pair, klen);
    key[klen] = '\0';
    return scn_strategy_set(s, key, eq + 1, err, err_cap);
}

int scn_strategy_build(const scn_strategy_t *const *layers, size_t count,
                       broker_config_t *out, char *err, size_t err_cap) {
    assert(out != NULL);
    assert(count <= 8);
    broker_config_default(out);
    for (size_t l = 0; l < count; l++) {
        if (layers[l] == NULL) continue;
        for (uint32_t i = 0; i < layers[l]->count; i++) {
            const scn_kv_t *kv = &layers[l]->kv[i];
            if (scn__client_key(kv->key)) continue;
            if (broker_config_set(out, kv->key, kv->value, err, err_cap) != 0) return -1;
        }
    }
    return broker_config_check(out, err, err_cap);
}

int scn_strategy_for(const scenario_t *s, scn_variant_t variant,
                     const scn_strategy_t *overrides, broker_config_t *out,
                     char *err, size_t err_cap) {
    assert(s != NULL && out != NULL);
    const scn_strategy_t *side = NULL;
    if (variant == SCN_VARIANT_WEAK) side = &s->teach.weak;
    if (variant == SCN_VARIANT_STRONG) side = &s->teach.strong;
    const scn_strategy_t *layers[3] = {&s->strategy, side, overrides};
    return scn_strategy_build(layers, 3, out, err, err_cap);
}

bool scn_strategy_ack_auto(const scenario_t *s, scn_variant_t variant,
                          const scn_strategy_t *overrides) {
    assert(s != NULL);
    const scn_strategy_t *side = variant == SCN_VARIANT_WEAK     ? &s->teach.weak
                                 : variant == SCN_VARIANT_STRONG ? &s->teach.strong
                                                                 : NULL;
    const scn_strategy_t *layers[2] = {side, overrides};
    bool autoack = s->workload.ack_auto;
    for (size_t l = 0; l < 2; l++)
        for (uint32_t i = 0; layers[l] != NULL && i < layers[l]->count; i++)
            if (strcmp(layers[l]->kv[i].key, "ack") == 0)
                autoack = strcmp(layers[l]->kv[i].value, "auto") == 0;
    return autoack;
}

int scn_strategy_describe(const scenario_t *s, scn_variant_t variant,
                          const scn_strategy_t *overrides, char *buf, size_t cap) {
    assert(buf != NULL && cap > 0);
    broker_config_t cfg;
    char err[256];
    buf[0] = '\0';
    if (scn_strategy_for(s, variant, overrides, &cfg, err, sizeof err) != 0) {
        snprintf(buf, cap, "%s", err);
        return -1;
    }
    broker_config_format(&cfg, buf, cap);
    const size_t used = strlen(buf);
    snprintf(buf + used, cap - used, " ack=%s",
             scn_strategy_ack_auto(s, variant, overrides) ? "auto" : "manual");
    return 0;
}

static int scn__u64(const char *text, size_t len, uint64_t *out) {
    char buf[32];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (buf[i] < '0' || buf[i] > '9') return -1;
    errno = 0;
    const unsigned long long v = strtoull(buf, NULL, 10);
    if (errno != 0) return -1;
    *out = (uint64_t)v;
    return 0;
}

int scn_seeds_parse(const char *text, uint64_t *first, uint64_t *last) {
    assert(first != NULL && last != NULL);
    if (text == NULL) return -1;
    const char *dots = strstr(text, "..");
    uint64_t a = 0, b = 0;
    if (dots == NULL) {
        if (scn__u64(text, strlen(text), &a) != 0) return -1;
        b = a;
    } else {
        if (scn__u64(text, (size_t)(dots - text), &a) != 0) return -1;
        if (scn__u64(dots + 2, strlen(dots + 2), &b) != 0) return -1;
    }
    if (b < a || b - a >= SCN_SEEDS_MAX) return -1;
    *first = a;
    *last = b;
    return 0;
}

void scn_apply_side(scenario_t *s, scn_variant_t variant) {
    assert(s != NULL);
    if (variant == SCN_VARIANT_NONE || !s->teach.present) return;
    s->workload = s->teach.workload[variant];
    s->expect = s->teach.expect[variant];
}

const char *scn_variant_name(scn_variant_t v) {
    return v == SCN_VARIANT_WEAK ? "weak" : v == SCN_VARIANT_STRONG ? "strong" : "";
}

static const char *const scn_invariant_names[SCN_INV_COUNT] = {
    "no_loss", "no_duplicates", "no_phantoms", "ordering",
    "replica_agreement", "availability", "recovery", "max_unavailable",
    "attempt_success", "consumer_availability", "leaderless", "progress", "drained",
    "latency", "duplicate_enqueues",
};

const char *scn_invariant_name(unsigned index) {
    assert(index < SCN_INV_COUNT);
    return scn_invariant_names[index];
}

int scn_invariant_parse(const char *name) {
    if (name == NULL) return -1;
    for (unsigned i = 0; i < SCN_INV_COUNT; i++)
        if (strcmp(name, scn_invariant_names[i]) == 0) return (int)i;
    return -1;
}

unsigned scn_edit_distance(const char *a, const char *b) {
    assert(a != NULL && b != NULL);
    /* Levenshtein over short identifiers; anything longer than the row
     * buffer is "far" (no suggestion). */
    enum { ROW_MAX = 64 };
    const size_t la = strlen(a), lb = strlen(b);
    if (la >= ROW_MAX || lb >= ROW_MAX) return 3;
    unsigned row[ROW_MAX];
    for (size_t j = 0; j <= lb; j++) row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            const unsigned up = row[j];
            unsigned best = diag + (a[i - 1] == b[j - 1] ? 0u : 1u);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > 3 ? 3 : row[lb];
}

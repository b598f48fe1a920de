/*
 * scenarios/lua_api.c — the sandboxed Lua state of one scenario: the
 * declaration functions (strict field checking with "did you mean"), the
 * action functions (selectors, process/network/disk faults, now, log) and
 * math.random from the simulator's stream.
 *
 * Every error a scenario can cause becomes "FILE:LINE: message": Lua's own
 * messages are normalised to the full path (Lua shortens long chunk names
 * to "...tail"), and errors without a position get the line of the Lua code
 * that was running.
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "scenarios/engine.h"
#include "scenarios/scenario.h"

enum {
    DECL_SCENARIO = 0, DECL_CLUSTER, DECL_NETWORK, DECL_DISK, DECL_WORKLOAD,
    DECL_PHASES, DECL_NEMESIS, DECL_EXPECT, DECL_TEACH, DECL_COUNT
};
static const char *const lua__decl_names[DECL_COUNT] = {
    "scenario", "cluster", "network", "disk", "workload", "phases", "nemesis",
    "expect", "teach",
};

#define LUA__HOOK_STEPS 1000
#define LUA__STACK_LEVELS_MAX 64

/* ---- plumbing ------------------------------------------------------------ */

static scenario_t *lua__scn(lua_State *L) {
    void *ud = NULL;
    (void)lua_getallocf(L, &ud);
    assert(ud != NULL);
    return ud;
}

static void *lua__alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    scenario_t *s = ud;
    const size_t old = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        s->lua_memory_bytes -= old;
        free(ptr);
        return NULL;
    }
    /* A bounded heap: a runaway scenario gets "not enough memory", the
     * process keeps its memory for the other runs of a sweep. */
    if (nsize > old && s->lua_memory_bytes + (nsize - old) > SCN_LUA_MEMORY_MAX) return NULL;
    void *p = realloc(ptr, nsize);
    if (p == NULL) return NULL;
    s->lua_memory_bytes = s->lua_memory_bytes - old + nsize;
    return p;
}

static void lua__hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    scenario_t *s = lua__scn(L);
    if (s->lua_steps_left <= LUA__HOOK_STEPS)
        luaL_error(L, "instruction limit exceeded (%u VM steps): an endless loop?",
                   SCN_LUA_STEPS_MAX);
    s->lua_steps_left -= LUA__HOOK_STEPS;
}

/* Line of the Lua code calling the running C function (0 if none). */
static int lua__caller_line(lua_State *L) {
    lua_Debug ar;
    for (int level = 1; level < LUA__STACK_LEVELS_MAX; level++) {
        if (!lua_getstack(L, level, &ar)) break;
        if (lua_getinfo(L, "l", &ar) && ar.currentline > 0) return ar.currentline;
    }
    return 0;
}

/* Rewrite `msg` into "PATH:LINE: text" in out. */
static void lua__normalize(const scenario_t *s, const char *msg, int line, char *out,
                           size_t cap) {
    assert(s != NULL && out != NULL);
    if (msg == NULL) msg = "(error object is not a string)";
    const size_t plen = strlen(s->path);
    if (strncmp(msg, s->path, plen) == 0 && msg[plen] == ':') {
        snprintf(out, cap, "%s", msg);
        return;
    }
    if (strncmp(msg, "...", 3) == 0) {
        const char *colon = strchr(msg + 3, ':');
        const size_t tlen = colon != NULL ? (size_t)(colon - (msg + 3)) : 0;
        if (colon != NULL && tlen <= plen && tlen > 0 &&
            strncmp(s->path + plen - tlen, msg + 3, tlen) == 0) {
            snprintf(out, cap, "%s%s", s->path, colon);
            return;
        }
    }
    if (line > 0) snprintf(out, cap, "%s:%d: %s", s->path, line, msg);
    else snprintf(out, cap, "%s: %s", s->path, msg);
}

static void lua__hint_global(char *msg, size_t cap);

static int lua__msgh(lua_State *L) {
    scenario_t *s = lua__scn(L);
    const char *msg = lua_tostring(L, 1);
    char buf[SCN_ERR_MAX];
    if (msg == NULL) {
        snprintf(buf, sizeof buf, "error object is a %s value", luaL_typename(L, 1));
        msg = lua_pushstring(L, buf);
    }
    char out[SCN_ERR_MAX];
    lua__normalize(s, msg, lua__caller_line(L), out, sizeof out);
    lua__hint_global(out, sizeof out);
    lua_pushstring(L, out);
    return 1;
}

/* ---- strict table fields --------------------------------------------------- */

static size_t lua__common_prefix(const char *a, const char *b) {
    size_t n = 0;
    while (a[n] != '\0' && a[n] == b[n]) n++;
    return n;
}

/* The closest known name (edit distance <= 2); ties go to the longer common
 * prefix, so "lead" suggests "leader" rather than "load". */
static const char *lua__suggest(const char *key, const char *const *known) {
    const char *best = NULL;
    unsigned best_d = 3;
    size_t best_p = 0;
    for (size_t i = 0; known[i] != NULL; i++) {
        const unsigned d = scn_edit_distance(key, known[i]);
        const size_t p = lua__common_prefix(key, known[i]);
        if (d < best_d || (d == best_d && best != NULL && p > best_p)) {
            best_d = d;
            best = known[i];
            best_p = p;
        }
    }
    return best;
}

/* A declaration error that does not stop loading: the file goes on, so every
 * such error of a broken file (unknown field, wrong type, impossible value)
 * is reported in one pass, each with its line. */
static void lua__soft_error(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lua__soft_error(lua_State *L, const char *fmt, ...) {
    scenario_t *s = lua__scn(L);
    char msg[SCN_ERR_MAX / 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Inside an action (links{...}) the run cannot go on: stop it here. */
    if (s->engine != NULL) luaL_error(L, "%s", msg);
    if (++s->soft_errors > SCN_SOFT_ERRORS_MAX) return; /* counted, shown as "and N more" */
    const size_t used = strlen(s->soft_err);
    const int line = s->soft_line > 0 ? s->soft_line : lua__caller_line(L);
    if (line > 0)
        snprintf(s->soft_err + used, sizeof s->soft_err - used, "%s%s:%d: %s", used ? "\n" : "",
                 s->path, line, msg);
    else
        snprintf(s->soft_err + used, sizeof s->soft_err - used, "%s%s: %s", used ? "\n" : "",
                 s->path, msg);
}

static int lua__strcmp_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define LUA__UNKNOWN_KEYS_MAX 16u

static void lua__check_fields(lua_State *L, int idx, const char *what,
                              const char *const *known) {
    assert(idx > 0);
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "%s: expected a table { key = value, ... }, got %s", what,
                   luaL_typename(L, idx));
    /* Every unknown key, sorted, so the message does not depend on Lua's
     * (per-process seeded) hash order. The keys stay anchored in the table. */
    const char *unknown[LUA__UNKNOWN_KEYS_MAX];
    size_t n = 0;
    bool positional = false;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            positional = true;
            lua_pop(L, 1);
            continue;
        }
        const char *key = lua_tostring(L, -2);
        bool found = false;
        for (size_t i = 0; known[i] != NULL && !found; i++) found = strcmp(key, known[i]) == 0;
        if (!found && n < LUA__UNKNOWN_KEYS_MAX) unknown[n++] = key;
        lua_pop(L, 1);
    }
    if (positional) lua__soft_error(L, "%s: unexpected positional value (write name = value)", what);
    qsort(unknown, n, sizeof unknown[0], lua__strcmp_ptr);
    for (size_t i = 0; i < n; i++) {
        const char *hint = lua__suggest(unknown[i], known);
        if (hint != NULL)
            lua__soft_error(L, "%s: unknown field '%s' (did you mean '%s'?)", what, unknown[i], hint);
        else
            lua__soft_error(L, "%s: unknown field '%s'", what, unknown[i]);
    }
}

/* Push t[key]; false (nothing pushed) when nil. */
static bool lua__field(lua_State *L, int idx, const char *key) {
    if (lua_getfield(L, idx, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return false;
    }
    return true;
}

/* The value on top has the wrong type: record it, pop it, go on. */
static bool lua__type_error(lua_State *L, const char *what, const char *key, const char *want) {
    lua__soft_error(L, "%s: field '%s' must be %s, got %s", what, key, want, luaL_typename(L, -1));
    lua_pop(L, 1);
    return false;
}

static bool lua__opt_num(lua_State *L, int idx, const char *what, const char *key,
                         double min, double max, double *out) {
    if (!lua__field(L, idx, key)) return false;
    if (lua_type(L, -1) != LUA_TNUMBER) return lua__type_error(L, what, key, "a number");
    const double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!isfinite(v) || v < min || v > max) {
        lua__soft_error(L, "%s: %s = %g is impossible (want %g..%g)", what, key, v, min, max);
        return false;
    }
    *out = v;
    return true;
}

static bool lua__opt_int(lua_State *L, int idx, const char *what, const char *key,
                         double min, double max, uint64_t *out) {
    double v = 0;
    if (!lua__opt_num(L, idx, what, key, min, max, &v)) return false;
    if (floor(v) != v) {
        lua__soft_error(L, "%s: %s = %g must be a whole number", what, key, v);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

static bool lua__opt_u32(lua_State *L, int idx, const char *what, const char *key,
                         double min, double max, uint32_t *out) {
    uint64_t v = 0;
    if (!lua__opt_int(L, idx, what, key, min, max, &v)) return false;
    *out = (uint32_t)v;
    return true;
}

static bool lua__opt_bool(lua_State *L, int idx, const char *what, const char *key, bool *out) {
    if (!lua__field(L, idx, key)) return false;
    if (lua_type(L, -1) != LUA_TBOOLEAN) return lua__type_error(L, what, key, "true or false");
    *out = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return true;
}

static bool lua__opt_str(lua_State *L, int idx, const char *what, const char *key, char *buf,
                         size_t cap) {
    if (!lua__field(L, idx, key)) return false;
    if (lua_type(L, -1) != LUA_TSTRING) return lua__type_error(L, what, key, "a string");
    size_t len = 0;
    const char *v = lua_tolstring(L, -1, &len);
    if (len >= cap) {
        lua_pop(L, 1);
        lua__soft_error(L, "%s: %s is too long (max %d bytes)", what, key, (int)cap - 1);
        return false;
    }
    memcpy(buf, v, len + 1);
    lua_pop(L, 1);
    return true;
}

/* One of `choices` (NULL-terminated); returns its index or -1 if absent. */
static int lua__opt_choice(lua_State *L, int idx, const char *what, const char *key,
                           const char *const *choices) {
    char buf[64];
    if (!lua__opt_str(L, idx, what, key, buf, sizeof buf)) return -1;
    for (int i = 0; choices[i] != NULL; i++)
        if (strcmp(buf, choices[i]) == 0) return i;
    const char *hint = lua__suggest(buf, choices);
    if (hint != NULL)
        lua__soft_error(L, "%s: %s = '%s' is impossible (did you mean '%s'?)", what, key, buf, hint);
    else
        lua__soft_error(L, "%s: %s = '%s' is impossible", what, key, buf);
    return -1;
}

/* Mark a declaration seen once; a second one is an error. */
static void lua__declare(lua_State *L, unsigned decl) {
    scenario_t *s = lua__scn(L);
    assert(decl < DECL_COUNT);
    if (s->engine != NULL)
        luaL_error(L, "%s{} is a declaration: call it at the top level, not inside an action",
                   lua__decl_names[decl]);
    if (s->lines[decl] != 0)
        luaL_error(L, "%s{} declared twice (first at line %d)", lua__decl_names[decl],
                   s->lines[decl]);
    s->lines[decl] = lua__caller_line(L);
    if (s->lines[decl] == 0) s->lines[decl] = -1;
}

/* ---- declarations ---------------------------------------------------------- */

static int lapi_scenario(lua_State *L) {
    static const char *const known[] = {"name", "description", "seeds", NULL};
    scenario_t *s = lua__scn(L);
    lua__declare(L, DECL_SCENARIO);
    lua__check_fields(L, 1, "scenario", known);
    (void)lua__opt_str(L, 1, "scenario", "name", s->name, sizeof s->name);
    (void)lua__opt_str(L, 1, "scenario", "description", s->description, sizeof s->description);
    if (lua__field(L, 1, "seeds")) {
        char text[64];
        if (lua_type(L, -1) == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0)
            snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(L, -1));
        else if (lua_type(L, -1) == LUA_TSTRING)
            snprintf(text, sizeof text, "%s", lua_tostring(L, -1));
        else
            return lua__type_error(L, "scenario", "seeds", "a range like \"1..5\" or a seed number"), 0;
        lua_pop(L, 1);
        if (scn_seeds_parse(text, &s->seed_first, &s->seed_last) != 0)
            lua__soft_error(L, "scenario: seeds = '%s' is impossible (want \"A..B\" with A <= B, "
                               "at most %u seeds)", text, SCN_SEEDS_MAX);
    }
    return 0;
}

static const char *const lua__cluster_keys[] = {
    "replicas", "acks", "fsync", "election", "dedup", "delivery_limit",
    "session_timeout_ms", "ack_timeout_ms", "election_timeout_ms", "heartbeat_ms",
    "pre_vote", "check_quorum", "snapshot_every", NULL,
};

/* A teach side may also compare the client-side key `ack`, and carry its
 * own `workload` and `expect` tables (read apart: see lua__teach_sides). */
static const char *const lua__teach_keys[] = {
    "replicas", "acks", "fsync", "election", "dedup", "delivery_limit",
    "session_timeout_ms", "ack_timeout_ms", "election_timeout_ms", "heartbeat_ms",
    "pre_vote", "check_quorum", "snapshot_every", "ack", "workload", "expect", NULL,
};

/* Read a strategy table (cluster{} or a teach side) into a layer. */
static void lua__strategy(lua_State *L, int idx, const char *what, scn_strategy_t *out,
                          const char *const *keys) {
    lua__check_fields(L, idx, what, keys);
    for (size_t i = 0; keys[i] != NULL; i++) {
        const char *key = keys[i];
        if (strcmp(key, "workload") == 0 || strcmp(key, "expect") == 0) continue;
        if (!lua__field(L, idx, key)) continue;
        char value[SCN_VALUE_MAX];
        switch (lua_type(L, -1)) {
        case LUA_TBOOLEAN:
            snprintf(value, sizeof value, "%s", lua_toboolean(L, -1) ? "on" : "off");
            break;
        case LUA_TSTRING:
            snprintf(value, sizeof value, "%s", lua_tostring(L, -1));
            break;
        case LUA_TNUMBER: {
            const double v = lua_tonumber(L, -1);
            if (!isfinite(v) || floor(v) != v || v < 0 || v > 1e15) {
                lua_pop(L, 1);
                lua__soft_error(L, "%s: %s = %g is impossible (want a whole number >= 0)", what,
                                key, v);
                continue;
            }
            snprintf(value, sizeof value, "%.0f", v);
            break;
        }
        default:
            (void)lua__type_error(L, what, key, "a number, a string or a boolean");
            continue;
        }
        lua_pop(L, 1);
        char err[256];
        if (scn_strategy_set(out, key, value, err, sizeof err) != 0)
            lua__soft_error(L, "%s: %s", what, err);
    }
}

static int lapi_cluster(lua_State *L) {
    scenario_t *s = lua__scn(L);
    lua__declare(L, DECL_CLUSTER);
    lua__strategy(L, 1, "cluster", &s->strategy, lua__cluster_keys);
    return 0;
}

static int lapi_network(lua_State *L) {
    static const char *const known[] = {"latency_ms", "jitter_ms", "jitter", "loss", "duplicate",
                                        "reorder", "corrupt", "reorder_window_ms", NULL};
    static const char *const jitters[] = {"uniform", "exponential", NULL};
    scenario_t *s = lua__scn(L);
    scn_network_t *n = &s->network;
    lua__declare(L, DECL_NETWORK);
    lua__check_fields(L, 1, "network", known);
    (void)lua__opt_num(L, 1, "network", "latency_ms", 0, 60000, &n->latency_ms);
    (void)lua__opt_num(L, 1, "network", "jitter_ms", 0, 60000, &n->jitter_ms);
    const int j = lua__opt_choice(L, 1, "network", "jitter", jitters);
    if (j >= 0) n->jitter_exponential = j == 1;
    (void)lua__opt_num(L, 1, "network", "loss", 0, 1, &n->loss);
    (void)lua__opt_num(L, 1, "network", "duplicate", 0, 1, &n->duplicate);
    (void)lua__opt_num(L, 1, "network", "reorder", 0, 1, &n->reorder);
    (void)lua__opt_num(L, 1, "network", "corrupt", 0, 1, &n->corrupt);
    (void)lua__opt_num(L, 1, "network", "reorder_window_ms", 0, 60000, &n->reorder_window_ms);
    return 0;
}

static int lapi_disk(lua_State *L) {
    static const char *const known[] = {"fsync_ms", "fsync_jitter_ms", "write_us", "crash",
                                        "keep", NULL};
    static const char *const modes[] = {"lose", "keep", "torn", NULL};
    scenario_t *s = lua__scn(L);
    scn_disk_t *d = &s->disk;
    lua__declare(L, DECL_DISK);
    lua__check_fields(L, 1, "disk", known);
    (void)lua__opt_num(L, 1, "disk", "fsync_ms", 0, 60000, &d->fsync_ms);
    (void)lua__opt_num(L, 1, "disk", "fsync_jitter_ms", 0, 60000, &d->fsync_jitter_ms);
    (void)lua__opt_num(L, 1, "disk", "write_us", 0, 1e6, &d->write_us);
    const int m = lua__opt_choice(L, 1, "disk", "crash", modes);
    if (m >= 0)
        d->crash = m == 0 ? SIM_DISK_CRASH_LOSE : m == 1 ? SIM_DISK_CRASH_KEEP : SIM_DISK_CRASH_TORN;
    (void)lua__opt_num(L, 1, "disk", "keep", 0, 1, &d->keep);
    return 0;
}

static void lua__producers(lua_State *L, int idx, scn_workload_t *w) {
    static const char *const known[] = {"count", "rate", "poisson", "window", "timeout_ms",
                                        "retries", "backoff_ms", "idempotent", "body_bytes",
                                        "messages", "persistent", "confirms", NULL};
    const char *what = "workload.producers";
    lua__check_fields(L, idx, what, known);
    (void)lua__opt_u32(L, idx, what, "count", 0, SCN_PRODUCERS_MAX, &w->producers);
    (void)lua__opt_num(L, idx, what, "rate", 0.001, 1e6, &w->rate);
    (void)lua__opt_bool(L, idx, what, "poisson", &w->poisson);
    (void)lua__opt_u32(L, idx, what, "window", 1, WORKLOAD_WINDOW_MAX, &w->window);
    (void)lua__opt_num(L, idx, what, "timeout_ms", 1, 3600000, &w->timeout_ms);
    (void)lua__opt_u32(L, idx, what, "retries", 0, WORKLOAD_RETRIES_MAX, &w->retries);
    (void)lua__opt_num(L, idx, what, "backoff_ms", 0, 3600000, &w->backoff_ms);
    (void)lua__opt_bool(L, idx, what, "idempotent", &w->producer_idempotent);
    (void)lua__opt_u32(L, idx, what, "body_bytes", 0, WORKLOAD_BODY_SIZE_MAX, &w->body_bytes);
    (void)lua__opt_int(L, idx, what, "messages", 0, (double)WORKLOAD_MESSAGES_MAX, &w->messages);
    (void)lua__opt_bool(L, idx, what, "persistent", &w->persistent);
    (void)lua__opt_bool(L, idx, what, "confirms", &w->confirms);
}

/* consumers.nack / .reject / .poison: { probability | every, requeue }. */
static void lua__refusal(lua_State *L, int idx, const char *what, bool poison, double *p,
                         uint64_t *every, bool *requeue) {
    static const char *const rule_keys[] = {"probability", "requeue", NULL};
    static const char *const poison_keys[] = {"every", "requeue", NULL};
    lua__check_fields(L, idx, what, poison ? poison_keys : rule_keys);
    if (poison) {
        if (!lua__opt_int(L, idx, what, "every", 1, (double)WORKLOAD_MESSAGES_MAX, every)) {
            if (lua_getfield(L, idx, "every") == LUA_TNIL)
                lua__soft_error(L, "%s: field 'every' is required", what);
            lua_pop(L, 1);
        }
    } else if (!lua__opt_num(L, idx, what, "probability", 0, 1, p)) {
        if (lua_getfield(L, idx, "probability") == LUA_TNIL)
            lua__soft_error(L, "%s: field 'probability' is required", what);
        lua_pop(L, 1);
    }
    (void)lua__opt_bool(L, idx, what, "requeue", requeue);
}

static void lua__consumers(lua_State *L, int idx, scn_workload_t *w) {
    static const char *const known[] = {"count", "prefetch", "ack", "processing_ms",
                                        "crash_before_ack", "idempotent", "nack", "reject",
                                        "poison", NULL};
    static const char *const acks[] = {"manual", "auto", NULL};
    const char *what = "workload.consumers";
    lua__check_fields(L, idx, what, known);
    (void)lua__opt_u32(L, idx, what, "count", 0, SCN_CONSUMERS_MAX, &w->consumers);
    (void)lua__opt_u32(L, idx, what, "prefetch", 1, WORKLOAD_BUFFER_MAX, &w->prefetch);
    const int a = lua__opt_choice(L, idx, what, "ack", acks);
    if (a >= 0) w->ack_auto = a == 1;
    (void)lua__opt_num(L, idx, what, "processing_ms", 0, 60000, &w->processing_ms);
    (void)lua__opt_num(L, idx, what, "crash_before_ack", 0, 1, &w->crash_before_ack);
    (void)lua__opt_bool(L, idx, what, "idempotent", &w->consumer_idempotent);
    static const char *const rules[] = {"nack", "reject", "poison"};
    for (int i = 0; i < 3; i++) {
        if (!lua__field(L, idx, rules[i])) continue;
        char name[64];
        snprintf(name, sizeof name, "workload.consumers.%s", rules[i]);
        if (lua_type(L, -1) != LUA_TTABLE) {
            (void)lua__type_error(L, what, rules[i], "a table");
            continue;
        }
        const int t = lua_gettop(L);
        if (i == 0) lua__refusal(L, t, name, false, &w->nack_p, NULL, &w->nack_requeue);
        if (i == 1) lua__refusal(L, t, name, false, &w->reject_p, NULL, &w->reject_requeue);
        if (i == 2) lua__refusal(L, t, name, true, NULL, &w->poison_every, &w->poison_requeue);
        lua_pop(L, 1);
    }
}

/* A workload table (workload{} or a teach side's `workload`) over `w`. */
static void lua__workload_into(lua_State *L, int idx, scn_workload_t *w) {
    static const char *const known[] = {"queue", "delivery_limit", "dead_letter", "producers",
                                        "consumers", "probe", "dead_letter_consumers", NULL};
    lua__check_fields(L, idx, "workload", known);
    if (lua__opt_str(L, idx, "workload", "queue", w->queue, sizeof w->queue) && w->queue[0] == '\0')
        luaL_error(L, "workload: queue must not be empty");
    (void)lua__opt_u32(L, idx, "workload", "delivery_limit", 0, 1000000, &w->delivery_limit);
    (void)lua__opt_str(L, idx, "workload", "dead_letter", w->dead_letter, sizeof w->dead_letter);
    if (strcmp(w->dead_letter, w->queue) == 0)
        luaL_error(L, "workload: dead_letter must differ from queue '%s'", w->queue);
    (void)lua__opt_bool(L, idx, "workload", "probe", &w->probe);
    (void)lua__opt_u32(L, idx, "workload", "dead_letter_consumers", 0, SCN_CONSUMERS_MAX,
                       &w->dead_letter_consumers);
    if (lua__field(L, idx, "producers")) {
        lua__producers(L, lua_gettop(L), w);
        lua_pop(L, 1);
    }
    if (lua__field(L, idx, "consumers")) {
        lua__consumers(L, lua_gettop(L), w);
        lua_pop(L, 1);
    }
}

static int lapi_workload(lua_State *L) {
    scenario_t *s = lua__scn(L);
    lua__declare(L, DECL_WORKLOAD);
    lua__workload_into(L, 1, &s->workload);
    return 0;
}

static int lapi_phases(lua_State *L) {
    static const char *const known[] = {"chaos", "heal", "drain", NULL};
    scenario_t *s = lua__scn(L);
    lua__declare(L, DECL_PHASES);
    lua__check_fields(L, 1, "phases", known);
    (void)lua__opt_num(L, 1, "phases", "chaos", 0, SCN_PHASE_S_MAX, &s->phases.chaos_s);
    (void)lua__opt_num(L, 1, "phases", "heal", 0, SCN_PHASE_S_MAX, &s->phases.heal_s);
    (void)lua__opt_num(L, 1, "phases", "drain", 0, SCN_PHASE_S_MAX, &s->phases.drain_s);
    return 0;
}

static void lua__add_action(lua_State *L, double at_s, double every_s) {
    scenario_t *s = lua__scn(L);
    if (s->engine != NULL)
        luaL_error(L, "%s() schedules at load time: call it at the top level, not inside an action",
                   every_s > 0 ? "every" : "at");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (s->actions_count >= SCN_ACTIONS_MAX)
        luaL_error(L, "too many actions (max %u)", SCN_ACTIONS_MAX);
    scn_action_t *a = &s->actions[s->actions_count];
    a->line = lua__caller_line(L);
    a->at_s = at_s;
    a->every_s = every_s;
    lua_pushvalue(L, 2);
    a->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->actions_count++;
}

static int lapi_at(lua_State *L) {
    const double t = luaL_checknumber(L, 1);
    if (!isfinite(t) || t < 0 || t > 3 * SCN_PHASE_S_MAX)
        luaL_error(L, "at: time %f s is impossible (want >= 0)", t);
    lua__add_action(L, t, 0);
    return 0;
}

static int lapi_every(lua_State *L) {
    const double t = luaL_checknumber(L, 1);
    if (!isfinite(t) || t < 0.001 || t > SCN_PHASE_S_MAX)
        luaL_error(L, "every: interval %f s is impossible (want >= 0.001)", t);
    lua__add_action(L, t, t);
    return 0;
}

static int lapi_nemesis(lua_State *L) {
    static const char *const known[] = {"kinds", "swarm", "interval", "duration", NULL};
    scenario_t *s = lua__scn(L);
    scn_nemesis_t *n = &s->nemesis;
    lua__declare(L, DECL_NEMESIS);
    lua__check_fields(L, 1, "nemesis", known);
    n->enabled = true;
    if (lua__field(L, 1, "kinds")) {
        n->kinds_mask = 0;
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "all") == 0) {
            n->kinds_mask = NEMESIS_KINDS_ALL;
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            const int t = lua_gettop(L);
            const lua_Unsigned len = lua_rawlen(L, t);
            if (len == 0) luaL_error(L, "nemesis: kinds must not be empty");
            for (lua_Unsigned i = 1; i <= len && i <= 64; i++) {
                lua_rawgeti(L, t, (lua_Integer)i);
                const char *name = lua_tostring(L, -1);
                if (lua_type(L, -1) != LUA_TSTRING)
                    luaL_error(L, "nemesis: kinds[%d] must be a string", (int)i);
                if (strcmp(name, "all") == 0) {
                    n->kinds_mask = NEMESIS_KINDS_ALL;
                } else {
                    const int k = nemesis_kind_parse(name);
                    if (k < 0) {
                        const char *names[NEMESIS_KINDS_COUNT + 1];
                        for (int j = 0; j < NEMESIS_KINDS_COUNT; j++)
                            names[j] = nemesis_kind_name((nemesis_kind_t)j);
                        names[NEMESIS_KINDS_COUNT] = NULL;
                        const char *hint = lua__suggest(name, names);
                        if (hint != NULL)
                            lua__soft_error(L, "nemesis: unknown kind '%s' (did you mean '%s'?)",
                                            name, hint);
                        else
                            lua__soft_error(L, "nemesis: unknown kind '%s'", name);
                    } else {
                        n->kinds_mask |= UINT32_C(1) << k;
                    }
                }
                lua_pop(L, 1);
            }
        } else {
            lua__soft_error(L, "nemesis: field 'kinds' must be \"all\" or a list of kind names, "
                               "got %s", luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    (void)lua__opt_bool(L, 1, "nemesis", "swarm", &n->swarm);
    (void)lua__opt_num(L, 1, "nemesis", "interval", 0.001, SCN_PHASE_S_MAX, &n->interval_s);
    (void)lua__opt_num(L, 1, "nemesis", "duration", 0.001, SCN_PHASE_S_MAX, &n->duration_s);
    return 0;
}

static void lua__expect_into(lua_State *L, int idx, scn_expect_t *x);

static int lapi_expect(lua_State *L) {
    scenario_t *s = lua__scn(L);
    lua__declare(L, DECL_EXPECT);
    lua__expect_into(L, 1, &s->expect);
    return 0;
}

/* An expect table (expect{} or a teach side's `expect`) over `x`. */
static void lua__expect_into(lua_State *L, int idx, scn_expect_t *x) {
    static const char *const known[] = {"no_loss", "no_duplicates", "no_phantoms", "ordering",
                                        "replica_agreement", "availability", "recovery",
                                        "max_unavailable", "attempt_success",
                                        "consumer_availability", "leaderless",
                                        "leaderless_max", "progress", "drained",
                                        "latency_p99_ms", "duplicate_enqueues", "leaderless_s",
                                        NULL};
    lua__check_fields(L, idx, "expect", known);
    (void)lua__opt_bool(L, idx, "expect", "no_loss", &x->no_loss);
    (void)lua__opt_bool(L, idx, "expect", "no_duplicates", &x->no_duplicates);
    (void)lua__opt_bool(L, idx, "expect", "no_phantoms", &x->no_phantoms);
    (void)lua__opt_bool(L, idx, "expect", "ordering", &x->ordering);
    (void)lua__opt_bool(L, idx, "expect", "replica_agreement", &x->replica_agreement);
    x->has_availability = lua__opt_num(L, idx, "expect", "availability", 0, 1, &x->availability);
    x->has_recovery = lua__opt_num(L, idx, "expect", "recovery", 0, SCN_PHASE_S_MAX, &x->recovery_s);
    x->has_max_unavailable =
        lua__opt_num(L, idx, "expect", "max_unavailable", 0, SCN_PHASE_S_MAX, &x->max_unavailable_s);
    x->has_attempt_success =
        lua__opt_num(L, idx, "expect", "attempt_success", 0, 1, &x->attempt_success);
    x->has_consumer_availability = lua__opt_num(L, idx, "expect", "consumer_availability", 0, 1,
                                                &x->consumer_availability);
    x->has_leaderless =
        lua__opt_num(L, idx, "expect", "leaderless", 0, SCN_PHASE_S_MAX, &x->leaderless_s);
    /* leaderless_s: the same bound, spelt with its unit */
    if (lua__opt_num(L, idx, "expect", "leaderless_s", 0, SCN_PHASE_S_MAX, &x->leaderless_s)) {
        const bool both = lua_getfield(L, idx, "leaderless") != LUA_TNIL;
        lua_pop(L, 1);
        if (both)
            lua__soft_error(L, "expect: leaderless and leaderless_s are the same bound: give one");
        x->has_leaderless = true;
    }
    x->has_leaderless_max =
        lua__opt_num(L, idx, "expect", "leaderless_max", 0, SCN_PHASE_S_MAX, &x->leaderless_max_s);
    x->has_latency_p99 =
        lua__opt_num(L, idx, "expect", "latency_p99_ms", 0, SCN_PHASE_S_MAX * 1e3, &x->latency_p99_ms);
    x->has_duplicate_enqueues = lua__opt_int(L, idx, "expect", "duplicate_enqueues", 0,
                                             (double)WORKLOAD_MESSAGES_MAX, &x->duplicate_enqueues);
    /* progress is always checked; a number tightens or widens its bound */
    x->has_progress =
        lua__opt_num(L, idx, "expect", "progress", 0.001, SCN_PHASE_S_MAX, &x->progress_s);
    /* A file that does not hold messages to no_loss does not hold them to
     * being drained either, unless it says so. */
    if (!lua__opt_bool(L, idx, "expect", "drained", &x->drained)) x->drained = x->no_loss;
}

static int lapi_teach(lua_State *L) {
    static const char *const known[] = {"lesson", "violation", "weak", "strong", NULL};
    scenario_t *s = lua__scn(L);
    scn_teach_t *t = &s->teach;
    lua__declare(L, DECL_TEACH);
    lua__check_fields(L, 1, "teach", known);
    t->present = true;
    if (!lua__opt_str(L, 1, "teach", "lesson", t->lesson, sizeof t->lesson))
        luaL_error(L, "teach: field 'lesson' is required");
    if (!lua__opt_str(L, 1, "teach", "violation", t->violation, sizeof t->violation))
        luaL_error(L, "teach: field 'violation' is required (e.g. \"no_loss\")");
    if (scn_invariant_parse(t->violation) < 0) {
        const char *names[SCN_INV_COUNT + 1];
        for (unsigned i = 0; i < SCN_INV_COUNT; i++) names[i] = scn_invariant_name(i);
        names[SCN_INV_COUNT] = NULL;
        const char *hint = lua__suggest(t->violation, names);
        if (hint != NULL)
            lua__soft_error(L, "teach: unknown violation '%s' (did you mean '%s'?)", t->violation,
                            hint);
        else
            lua__soft_error(L, "teach: unknown violation '%s'", t->violation);
    }
    static const char *const sides[] = {"weak", "strong"};
    for (int v = 0; v < 2; v++) {
        char what[32];
        snprintf(what, sizeof what, "teach.%s", sides[v]);
        if (!lua__field(L, 1, sides[v])) luaL_error(L, "teach: field '%s' is required", sides[v]);
        const int side = lua_gettop(L);
        lua__strategy(L, side, what, v == 0 ? &t->weak : &t->strong, lua__teach_keys);
        /* the side's workload/expect are applied over the file's once the
         * whole file is loaded (declarations come in any order) */
        static const char *const tables[] = {"workload", "expect"};
        for (int k = 0; k < 2; k++) {
            if (!lua__field(L, side, tables[k])) continue;
            if (lua_type(L, -1) != LUA_TTABLE) {
                lua__soft_error(L, "%s: field '%s' must be a table, got %s", what, tables[k],
                                luaL_typename(L, -1));
                lua_pop(L, 1);
                continue;
            }
            t->side_ref[v + 1][k] = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* ---- actions: sets ----------------------------------------------------------- */

static scn_engine_t *lua__engine(lua_State *L, const char *fn) {
    scenario_t *s = lua__scn(L);
    if (s->engine == NULL)
        luaL_error(L, "%s() works only inside an action: at(t, function() ... end)", fn);
    return s->engine;
}

static faults_set_t lua__node_bit(lua_State *L, const scn_engine_t *e, lua_Integer i) {
    if (i < 0 || (lua_Unsigned)i >= e->replicas)
        luaL_error(L, "node %d does not exist (replicas = %d: nodes 0..%d)", (int)i,
                   (int)e->replicas, (int)e->replicas - 1);
    return (faults_set_t)1u << i;
}

static lua_Integer lua__int_arg(lua_State *L, int arg) {
    if (lua_type(L, arg) != LUA_TNUMBER || !lua_isinteger(L, arg)) {
        const double v = lua_tonumber(L, arg);
        if (lua_type(L, arg) != LUA_TNUMBER || floor(v) != v)
            luaL_typeerror(L, arg, "whole number");
        return (lua_Integer)v;
    }
    return lua_tointeger(L, arg);
}

/* A set of brokers: a node index or a list of them (what the selectors return). */
static faults_set_t lua__set(lua_State *L, int arg, const scn_engine_t *e) {
    if (lua_type(L, arg) == LUA_TNUMBER) return lua__node_bit(L, e, lua__int_arg(L, arg));
    if (lua_type(L, arg) != LUA_TTABLE)
        luaL_typeerror(L, arg, "set of nodes (node(0), leader(), {0, 1}, ...)");
    faults_set_t set = 0;
    const lua_Unsigned len = lua_rawlen(L, arg);
    for (lua_Unsigned i = 1; i <= len && i <= 64; i++) {
        lua_rawgeti(L, arg, (lua_Integer)i);
        if (lua_type(L, -1) != LUA_TNUMBER || !lua_isinteger(L, -1))
            luaL_error(L, "a set holds node numbers, element %d is %s", (int)i,
                       luaL_typename(L, -1));
        set |= lua__node_bit(L, e, lua_tointeger(L, -1));
        lua_pop(L, 1);
    }
    return set;
}

static int lua__push_set(lua_State *L, faults_set_t set) {
    lua_createtable(L, FAULTS_BROKERS_MAX, 0);
    lua_Integer n = 0;
    for (uint32_t i = 0; i < FAULTS_BROKERS_MAX; i++)
        if (set & (1u << i)) {
            lua_pushinteger(L, i);
            lua_rawseti(L, -2, ++n);
        }
    return 1;
}

static void lua__rc(lua_State *L, const char *fn, int rc) {
    if (rc < 0) luaL_error(L, "%s: the fault could not be applied (error %d)", fn, rc);
}

static int lapi_leader(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "leader");
    const int l = scn_engine_leader(e);
    return lua__push_set(L, l >= 0 ? (faults_set_t)1u << l : 0);
}
static int lapi_node(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "node");
    return lua__push_set(L, lua__node_bit(L, e, lua__int_arg(L, 1)));
}
static int lapi_nodes(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "nodes");
    faults_set_t set = 0;
    const int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) set |= lua__node_bit(L, e, lua__int_arg(L, i));
    return lua__push_set(L, set);
}
static int lapi_all(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "all");
    return lua__push_set(L, faults_all(&e->faults));
}
/* The brokers whose host is in `state` (DOWN: no process; UP: running and
 * scheduled; PAUSED: process exists, frozen). */
static faults_set_t lua__hosts_in(const scn_engine_t *e, sim_host_state_t state) {
    faults_set_t set = 0;
    for (uint32_t i = 0; i < e->replicas; i++)
        if (sim_host_state(e->sim, i) == state) set |= (faults_set_t)1u << i;
    return set;
}
/* Every up broker but the leader: with no leader, every up broker. Never a
 * down or paused one (they follow nobody). */
static int lapi_followers(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "followers");
    const int l = scn_engine_leader(e);
    const faults_set_t lead = l >= 0 ? (faults_set_t)1u << l : 0;
    return lua__push_set(L, lua__hosts_in(e, SIM_HOST_UP) & ~lead);
}
static int lapi_up(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "up");
    return lua__push_set(L, lua__hosts_in(e, SIM_HOST_UP));
}
static int lapi_paused(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "paused");
    return lua__push_set(L, lua__hosts_in(e, SIM_HOST_PAUSED));
}
static int lapi_minority(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "minority");
    return lua__push_set(L, faults_random_set(&e->faults, (e->replicas - 1) / 2));
}
static int lapi_majority(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "majority");
    return lua__push_set(L, faults_random_set(&e->faults, e->replicas / 2 + 1));
}
static int lapi_random_nodes(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "random_nodes");
    const lua_Integer n = lua__int_arg(L, 1);
    if (n < 0 || (lua_Unsigned)n > e->replicas)
        luaL_error(L, "random_nodes(%d): want 0..%d", (int)n, (int)e->replicas);
    return lua__push_set(L, faults_random_set(&e->faults, (uint32_t)n));
}
static int lapi_down(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "down");
    return lua__push_set(L, lua__hosts_in(e, SIM_HOST_DOWN));
}
static int lapi_others(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "others");
    return lua__push_set(L, faults_all(&e->faults) & ~lua__set(L, 1, e));
}

/* ---- actions: faults ----------------------------------------------------- */

typedef int (*lua__set_fault_fn)(faults_t *f, faults_set_t set);

static int lua__set_fault(lua_State *L, const char *fn, lua__set_fault_fn op) {
    scn_engine_t *e = lua__engine(L, fn);
    const faults_set_t set = lua__set(L, 1, e);
    if (set != 0) lua__rc(L, fn, op(&e->faults, set)); /* an empty set is a no-op */
    return 0;
}

static int lapi_crash(lua_State *L) { return lua__set_fault(L, "crash", faults_crash); }
static int lapi_kill(lua_State *L) { return lua__set_fault(L, "kill", faults_kill); }
static int lapi_stop(lua_State *L) { return lua__set_fault(L, "stop", faults_stop); }
static int lapi_restart(lua_State *L) { return lua__set_fault(L, "restart", faults_restart); }
static int lapi_pause(lua_State *L) { return lua__set_fault(L, "pause", faults_pause); }
static int lua__resume(lua_State *L) { return lua__set_fault(L, "resume", faults_resume); }
static int lapi_isolate(lua_State *L) { return lua__set_fault(L, "isolate", faults_isolate); }
static int lapi_split(lua_State *L) { return lua__set_fault(L, "split", faults_split); }

static int lapi_power_loss(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "power_loss");
    lua__rc(L, "power_loss", faults_power_loss(&e->faults));
    return 0;
}

static int lapi_clock(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "clock");
    const faults_set_t set = lua__set(L, 1, e);
    const double offset_ms = luaL_checknumber(L, 2);
    const lua_Integer drift = lua_isnoneornil(L, 3) ? 0 : lua__int_arg(L, 3);
    if (!isfinite(offset_ms) || fabs(offset_ms) > 1e9)
        luaL_error(L, "clock: offset %f ms is impossible", offset_ms);
    if (drift < -100000 || drift > 100000)
        luaL_error(L, "clock: drift %d ppm is impossible (want -100000..100000)", (int)drift);
    if (set != 0)
        lua__rc(L, "clock", faults_clock(&e->faults, set, (int64_t)(offset_ms * 1e6), (int32_t)drift));
    return 0;
}

static int lapi_bridge(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "bridge");
    const faults_set_t side = lua__set(L, 1, e);
    const faults_set_t bridge = lua__node_bit(L, e, lua__int_arg(L, 2));
    uint32_t b = 0;
    while (((bridge >> b) & 1u) == 0) b++;
    if (side != 0) lua__rc(L, "bridge", faults_bridge(&e->faults, side & ~bridge, b));
    return 0;
}

static int lapi_one_way(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "one_way");
    const faults_set_t from = lua__set(L, 1, e), to = lua__set(L, 2, e);
    if (from != 0 && to != 0) lua__rc(L, "one_way", faults_one_way(&e->faults, from, to));
    return 0;
}

static int lapi_ring(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "ring");
    lua__rc(L, "ring", faults_ring(&e->faults));
    return 0;
}

static int lapi_heal(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "heal");
    lua__rc(L, "heal", faults_heal_net(&e->faults));
    return 0;
}

static int lapi_links(lua_State *L) {
    static const char *const known[] = {"loss", "duplicate", "reorder", "corrupt", "latency_ms",
                                        "reorder_window_ms", "clients", NULL};
    scn_engine_t *e = lua__engine(L, "links");
    const faults_set_t set = lua__set(L, 1, e);
    lua__check_fields(L, 2, "links", known);
    faults_link_spec_t spec;
    memset(&spec, 0, sizeof spec);
    double latency_ms = 0, window_ms = 5;
    (void)lua__opt_num(L, 2, "links", "loss", 0, 1, &spec.loss);
    (void)lua__opt_num(L, 2, "links", "duplicate", 0, 1, &spec.duplicate);
    (void)lua__opt_num(L, 2, "links", "reorder", 0, 1, &spec.reorder);
    (void)lua__opt_num(L, 2, "links", "corrupt", 0, 1, &spec.corrupt);
    (void)lua__opt_num(L, 2, "links", "latency_ms", 0, 600000, &latency_ms);
    (void)lua__opt_num(L, 2, "links", "reorder_window_ms", 0, 600000, &window_ms);
    spec.extra_latency_ns = (uint64_t)(latency_ms * 1e6);
    spec.reorder_window_ns = (uint64_t)(window_ms * 1e6);
    /* clients = false keeps client links clean (default: they suffer too). */
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "clients");
        if (!lua_isnil(L, -1)) {
            if (!lua_isboolean(L, -1)) luaL_error(L, "links: field 'clients' must be a boolean");
            spec.brokers_only = !lua_toboolean(L, -1);
        }
        lua_pop(L, 1);
    }
    if (set != 0) lua__rc(L, "links", faults_links(&e->faults, set, &spec));
    return 0;
}

static int lapi_clog(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "clog");
    const faults_set_t set = lua__set(L, 1, e);
    const double secs = luaL_checknumber(L, 2);
    if (!isfinite(secs) || secs < 0 || secs > SCN_PHASE_S_MAX)
        luaL_error(L, "clog: %f s is impossible", secs);
    if (set != 0) lua__rc(L, "clog", faults_clog(&e->faults, set, (uint64_t)(secs * 1e9)));
    return 0;
}

static int lapi_disk_corrupt(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "disk_corrupt");
    const faults_set_t set = lua__set(L, 1, e);
    const lua_Integer bits = lua_isnoneornil(L, 2) ? 1 : lua__int_arg(L, 2);
    if (bits < 1 || bits > SIM_DISK_CORRUPT_BITS_MAX)
        luaL_error(L, "disk_corrupt: %d bits is impossible (want 1..%d)", (int)bits,
                   (int)SIM_DISK_CORRUPT_BITS_MAX);
    /* files = "log": only files whose names start with it (what the nemesis hits) */
    const char *prefix = lua_isnoneornil(L, 3) ? NULL : luaL_checkstring(L, 3);
    if (prefix != NULL && strlen(prefix) >= FAULTS_OP_PREFIX_MAX)
        luaL_error(L, "disk_corrupt: file prefix '%s' is too long (max %d bytes)", prefix,
                   (int)FAULTS_OP_PREFIX_MAX - 1);
    if (set != 0) lua__rc(L, "disk_corrupt", faults_disk_corrupt(&e->faults, set, prefix, (uint32_t)bits));
    return 0;
}

/* disk_fast(set): undo disk_slow on those brokers only (a shrunk nemesis
 * schedule replays the nemesis's own undo with it). */
static int lapi_disk_fast(lua_State *L) { return lua__set_fault(L, "disk_fast", faults_disk_fast); }

static int lapi_disk_read_errors(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "disk_read_errors");
    const faults_set_t set = lua__set(L, 1, e);
    if (set != 0) lua__rc(L, "disk_read_errors", faults_disk_read_errors(&e->faults, set, NULL));
    return 0;
}

static int lapi_disk_full(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "disk_full");
    const faults_set_t set = lua__set(L, 1, e);
    bool full = true;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TBOOLEAN);
        full = lua_toboolean(L, 2);
    }
    if (set != 0) lua__rc(L, "disk_full", faults_disk_full(&e->faults, set, full));
    return 0;
}

static int lapi_disk_slow(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "disk_slow");
    const faults_set_t set = lua__set(L, 1, e);
    const double ms = luaL_checknumber(L, 2);
    if (!isfinite(ms) || ms < 0 || ms > 600000)
        luaL_error(L, "disk_slow: fsync %f ms is impossible (want 0..600000)", ms);
    if (set != 0) lua__rc(L, "disk_slow", faults_disk_slow(&e->faults, set, (uint64_t)(ms * 1e6)));
    return 0;
}

static int lapi_torn_writes(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "torn_writes");
    const faults_set_t set = lua__set(L, 1, e);
    const double p = lua_isnoneornil(L, 2) ? 0.5 : luaL_checknumber(L, 2);
    if (!(p >= 0 && p <= 1)) luaL_error(L, "torn_writes: keep probability %f is impossible (want 0..1)", p);
    if (set != 0)
        lua__rc(L, "torn_writes", faults_disk_crash_mode(&e->faults, set, SIM_DISK_CRASH_TORN, p));
    return 0;
}

/* ---- actions: clients and disk loss ------------------------------------------ */

/* producer(i) / consumer(i): a client handle { client = host, name = "producer 0" }. */
static int lua__client_handle(lua_State *L, const char *fn, bool producer) {
    scn_engine_t *e = lua__engine(L, fn);
    const lua_Integer i = lua__int_arg(L, 1);
    const uint32_t n = producer ? e->producers_count : e->scn->workload.consumers;
    if (i < 0 || (lua_Unsigned)i >= n)
        luaL_error(L, "%s(%d) does not exist (%s %d: 0..%d)", fn, (int)i,
                   producer ? "producers.count =" : "consumers.count =", (int)n, (int)n - 1);
    workload_client_t *c = producer ? e->producers[i] : e->consumers[i];
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)workload_client_host(c));
    lua_setfield(L, -2, "client");
    lua_pushfstring(L, "%s %d", fn, (int)i);
    lua_setfield(L, -2, "name");
    return 1;
}
static int lapi_producer(lua_State *L) { return lua__client_handle(L, "producer", true); }
static int lapi_consumer(lua_State *L) { return lua__client_handle(L, "consumer", false); }

static uint32_t lua__client_arg(lua_State *L, int arg, const char *fn) {
    if (lua_type(L, arg) != LUA_TTABLE || lua_getfield(L, arg, "client") != LUA_TNUMBER)
        luaL_error(L, "%s: argument %d must be a client: producer(i) or consumer(i)", fn, arg);
    const lua_Integer host = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return (uint32_t)host;
}

static int lapi_crash_client(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "crash_client");
    lua__rc(L, "crash_client", faults_client_crash(&e->faults, lua__client_arg(L, 1, "crash_client")));
    return 0;
}
static int lapi_restart_client(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "restart_client");
    lua__rc(L, "restart_client",
            faults_client_restart(&e->faults, lua__client_arg(L, 1, "restart_client")));
    return 0;
}
static int lapi_partition_client(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "partition_client");
    const uint32_t host = lua__client_arg(L, 1, "partition_client");
    const faults_set_t set = lua__set(L, 2, e);
    if (set != 0) lua__rc(L, "partition_client", faults_client_partition(&e->faults, host, set));
    return 0;
}
static int lapi_wipe(lua_State *L) { return lua__set_fault(L, "wipe", faults_wipe); }

/* ---- actions: misc --------------------------------------------------------- */

static int lapi_now(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "now");
    lua_pushnumber(L, (double)sim_now_ns(e->sim) / 1e9);
    return 1;
}

static int lapi_log(lua_State *L) {
    scn_engine_t *e = lua__engine(L, "log");
    const int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1)); /* string.format, captured at load */
    lua_insert(L, 1);
    lua_call(L, n, 1);
    const char *text = lua_tostring(L, -1);
    if (text == NULL) text = "";
    char detail[FAULTS_DETAIL_MAX];
    snprintf(detail, sizeof detail, "%s", text);
    faults_record(&e->faults, "log", "", detail); /* the trace hears of it from there */
    return 0;
}

static int lapi_random(lua_State *L) {
    scenario_t *s = lua__scn(L);
    lua_Integer lo = 1, hi = 0;
    switch (lua_gettop(L)) {
    case 0:
        lua_pushnumber(L, sim_prng_unit(&s->lua_prng));
        return 1;
    case 1:
        hi = luaL_checkinteger(L, 1);
        if (hi == 0) { /* math.random(0): a whole random integer, as in Lua 5.4 */
            lua_pushinteger(L, (lua_Integer)sim_prng_next(&s->lua_prng));
            return 1;
        }
        break;
    case 2:
        lo = luaL_checkinteger(L, 1);
        hi = luaL_checkinteger(L, 2);
        break;
    default:
        return luaL_error(L, "wrong number of arguments to 'random'");
    }
    luaL_argcheck(L, lo <= hi, lua_gettop(L), "interval is empty");
    const uint64_t span = (uint64_t)hi - (uint64_t)lo;
    const uint64_t r = span == UINT64_MAX ? sim_prng_next(&s->lua_prng)
                                          : sim_prng_below(&s->lua_prng, span + 1);
    lua_pushinteger(L, (lua_Integer)((uint64_t)lo + r));
    return 1;
}

static int lapi_randomseed(lua_State *L) {
    (void)L; /* the stream comes from the run seed; reseeding would break replay */
    return 0;
}

/* load(text [, name [, mode [, env]]]) restricted to text chunks. */
static int lapi_safe_load(lua_State *L) {
    size_t len = 0;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    const int env = !lua_isnone(L, 4) ? 4 : 0;
    const int rc = luaL_loadbufferx(L, text, len, name, "t");
    if (rc != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env != 0) {
        lua_pushvalue(L, env);
        if (lua_setupvalue(L, -2, 1) == NULL) lua_pop(L, 1);
    }
    return 1;
}

/* ---- the state ------------------------------------------------------------- */

static const luaL_Reg lua__functions[] = {
    {"scenario", lapi_scenario}, {"cluster", lapi_cluster}, {"network", lapi_network},
    {"disk", lapi_disk}, {"workload", lapi_workload}, {"phases", lapi_phases},
    {"at", lapi_at}, {"every", lapi_every}, {"nemesis", lapi_nemesis},
    {"expect", lapi_expect}, {"teach", lapi_teach},
    {"leader", lapi_leader}, {"node", lapi_node}, {"nodes", lapi_nodes}, {"all", lapi_all},
    {"followers", lapi_followers}, {"minority", lapi_minority}, {"majority", lapi_majority},
    {"random_nodes", lapi_random_nodes}, {"down", lapi_down}, {"others", lapi_others},
    {"up", lapi_up}, {"paused", lapi_paused},
    {"producer", lapi_producer}, {"consumer", lapi_consumer},
    {"crash_client", lapi_crash_client}, {"restart_client", lapi_restart_client},
    {"partition_client", lapi_partition_client}, {"wipe", lapi_wipe},
    {"crash", lapi_crash}, {"kill", lapi_kill}, {"stop", lapi_stop}, {"restart", lapi_restart},
    {"pause", lapi_pause}, {"resume", lua__resume}, {"power_loss", lapi_power_loss},
    {"clock", lapi_clock}, {"isolate", lapi_isolate}, {"split", lapi_split},
    {"bridge", lapi_bridge}, {"one_way", lapi_one_way}, {"ring", lapi_ring},
    {"heal", lapi_heal}, {"links", lapi_links}, {"clog", lapi_clog},
    {"disk_corrupt", lapi_disk_corrupt}, {"disk_read_errors", lapi_disk_read_errors},
    {"disk_full", lapi_disk_full}, {"disk_slow", lapi_disk_slow}, {"disk_fast", lapi_disk_fast},
    {"torn_writes", lapi_torn_writes}, {"now", lapi_now},
    {"load", lapi_safe_load},
    {NULL, NULL},
};

/* "attempt to call a nil value (global 'clustr')" gets "did you mean". */
static void lua__hint_global(char *msg, size_t cap) {
    static const char pattern[] = "attempt to call a nil value (global '";
    const char *at = strstr(msg, pattern);
    if (at == NULL) return;
    char name[64];
    const char *start = at + sizeof pattern - 1;
    const char *end = strchr(start, '\'');
    if (end == NULL || (size_t)(end - start) >= sizeof name) return;
    memcpy(name, start, (size_t)(end - start));
    name[end - start] = '\0';
    const char *known[sizeof lua__functions / sizeof lua__functions[0] + 1];
    size_t n = 0;
    for (const luaL_Reg *f = lua__functions; f->name != NULL; f++) known[n++] = f->name;
    known[n++] = "log";
    known[n] = NULL;
    const char *hint = lua__suggest(name, known);
    const size_t len = strlen(msg);
    if (hint != NULL && len < cap)
        snprintf(msg + len, cap - len, " (did you mean '%s'?)", hint);
}

static int lua__open(lua_State *L) {
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base}, {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func != NULL; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    /* The sandbox: nothing that reaches files, the OS, the collector or
     * libc's random numbers. */
    static const char *const removed[] = {"dofile", "loadfile", "collectgarbage", "print",
                                          "require", NULL};
    for (size_t i = 0; removed[i] != NULL; i++) {
        lua_pushnil(L);
        lua_setglobal(L, removed[i]);
    }
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_getfield(L, -1, "format");
    lua_pushcclosure(L, lapi_log, 1);
    lua_setglobal(L, "log");
    lua_pop(L, 1);
    lua_getglobal(L, LUA_MATHLIBNAME);
    lua_pushcfunction(L, lapi_random);
    lua_setfield(L, -2, "random");
    lua_pushcfunction(L, lapi_randomseed);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    luaL_setfuncs(L, lua__functions, 0);
    lua_pop(L, 1);
    return 0;
}

static void lua__defaults(scenario_t *s, const char *path) {
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    snprintf(s->name, sizeof s->name, "%s", base);
    char *dot = strrchr(s->name, '.');
    if (dot != NULL && strcmp(dot, ".lua") == 0) *dot = '\0';
    s->seed_first = s->seed_last = 1;
    s->network = (scn_network_t){.latency_ms = 1, .jitter_ms = 0.5, .reorder_window_ms = 5};
    s->disk = (scn_disk_t){.fsync_ms = 1, .fsync_jitter_ms = 0.2, .write_us = 20,
                           .crash = SIM_DISK_CRASH_LOSE, .keep = 0.5};
    scn_workload_t *w = &s->workload;
    snprintf(w->queue, sizeof w->queue, "orders");
    w->producers = 1, w->rate = 200, w->window = 32, w->timeout_ms = 1000, w->retries = 10;
    w->backoff_ms = 50, w->producer_idempotent = true, w->body_bytes = 64;
    w->persistent = true, w->confirms = true;
    w->nack_requeue = w->reject_requeue = w->poison_requeue = true;
    w->consumers = 1, w->prefetch = 32, w->processing_ms = 1;
    w->probe = true;
    s->phases = (scn_phases_t){.chaos_s = 20, .heal_s = 5, .drain_s = 15};
    s->nemesis = (scn_nemesis_t){.kinds_mask = NEMESIS_KINDS_ALL, .interval_s = 2, .duration_s = 3};
    s->expect = (scn_expect_t){.no_loss = true, .no_duplicates = true, .no_phantoms = true,
                               .replica_agreement = true, .drained = true,
                               .progress_s = SCN_PROGRESS_DEFAULT_S};
}

static int lua__fail_at(scenario_t *s, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lua__fail_at(scenario_t *s, int line, const char *fmt, ...) {
    char msg[SCN_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* appended: every whole-file check reports, one line each */
    const size_t used = strlen(s->err);
    if (used >= sizeof s->err) return -1;
    const char *sep = used > 0 ? "\n" : "";
    if (line > 0)
        snprintf(s->err + used, sizeof s->err - used, "%s%.600s:%d: %.380s", sep, s->path, line, msg);
    else
        snprintf(s->err + used, sizeof s->err - used, "%s%.600s: %.380s", sep, s->path, msg);
    return -1;
}

/* Checks that need the whole file (declarations come in any order). */
static int lua__validate(scenario_t *s) {
    const scn_phases_t *p = &s->phases;
    const double total = p->chaos_s + p->heal_s + p->drain_s;
    if (total <= 0) return lua__fail_at(s, s->lines[DECL_PHASES], "phases: all phases are empty");
    int rc = 0;
    for (uint32_t i = 0; i < s->actions_count; i++) {
        const scn_action_t *a = &s->actions[i];
        if (a->every_s == 0 && a->at_s > total)
            rc = lua__fail_at(s, a->line, "at: time %g s is beyond the phases (chaos + heal + drain = %g s)", a->at_s, total);
        if (a->every_s > 0 && a->every_s >= p->chaos_s)
            rc = lua__fail_at(s, a->line, "every: interval %g s never fires inside the chaos phase (%g s)",
                                a->every_s, p->chaos_s);
    }
    if (s->expect.has_progress && s->expect.progress_s > p->heal_s + p->drain_s)
        rc = lua__fail_at(s, s->lines[DECL_EXPECT],
                            "expect: progress = %g s cannot be observed: the run ends %g s after "
                            "heal (heal + drain)", s->expect.progress_s, p->heal_s + p->drain_s);
    const scn_workload_t *w = &s->workload;
    if (w->dead_letter_consumers > 0 && w->dead_letter[0] == '\0')
        rc = lua__fail_at(s, s->lines[DECL_WORKLOAD],
                            "workload: dead_letter_consumers needs a dead_letter queue");
    if (w->consumers + w->dead_letter_consumers > SCN_CONSUMERS_MAX)
        rc = lua__fail_at(s, s->lines[DECL_WORKLOAD],
                            "workload: %u consumers in all is too many (max %u)",
                            w->consumers + w->dead_letter_consumers, SCN_CONSUMERS_MAX);
    if (w->ack_auto && (w->nack_p > 0 || w->reject_p > 0 || w->poison_every > 0))
        rc = lua__fail_at(s, s->lines[DECL_WORKLOAD],
                            "workload.consumers: nack/reject/poison need ack = \"manual\" "
                            "(an auto-acked delivery cannot be refused)");
    if (s->nemesis.enabled && p->chaos_s <= 0)
        rc = lua__fail_at(s, s->lines[DECL_NEMESIS], "nemesis: the chaos phase is empty");
    char err[256];
    broker_config_t cfg;
    for (int v = SCN_VARIANT_NONE; v <= SCN_VARIANT_STRONG; v++) {
        if (v != SCN_VARIANT_NONE && !s->teach.present) break;
        if (scn_strategy_for(s, (scn_variant_t)v, NULL, &cfg, err, sizeof err) != 0) {
            rc = lua__fail_at(s, s->lines[v == 0 ? DECL_CLUSTER : DECL_TEACH], "%s", err);
            break; /* the sides build on cluster{}: one message is enough */
        }
    }
    for (int side = SCN_VARIANT_WEAK; s->teach.present && side <= SCN_VARIANT_STRONG; side++) {
        const int inv = scn_invariant_parse(s->teach.violation);
        const scn_expect_t *x = &s->teach.expect[side]; /* the file's, or the side's own */
        if ((inv == SCN_INV_AVAILABILITY && !x->has_availability) ||
            (inv == SCN_INV_RECOVERY && !x->has_recovery) ||
            (inv == SCN_INV_MAX_UNAVAILABLE && !x->has_max_unavailable) ||
            (inv == SCN_INV_ATTEMPT_SUCCESS && !x->has_attempt_success) ||
            (inv == SCN_INV_CONSUMER_AVAILABILITY && !x->has_consumer_availability) ||
            (inv == SCN_INV_LEADERLESS && !x->has_leaderless && !x->has_leaderless_max) ||
            (inv == SCN_INV_LATENCY && !x->has_latency_p99) ||
            (inv == SCN_INV_DUPLICATE_ENQUEUES && !x->has_duplicate_enqueues))
            rc = lua__fail_at(s, s->lines[DECL_TEACH],
                              "teach: violation '%s' needs a threshold in expect{} (or in the "
                              "%s side's expect)", s->teach.violation, scn_variant_name(side));
    }
    return rc;
}

/* Apply each teach side's workload/expect tables over copies of the file's
 * (run protected: errors are Lua errors at the teach{} line). */
static int lua__teach_sides(lua_State *L) {
    scenario_t *s = lua__scn(L);
    s->soft_line = s->lines[DECL_TEACH];
    for (int v = SCN_VARIANT_WEAK; v <= SCN_VARIANT_STRONG; v++) {
        scn_teach_t *t = &s->teach;
        t->workload[v] = s->workload;
        t->expect[v] = s->expect;
        if (t->side_ref[v][0] > 0) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, t->side_ref[v][0]);
            lua__workload_into(L, lua_gettop(L), &t->workload[v]);
            lua_pop(L, 1);
        }
        if (t->side_ref[v][1] > 0) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, t->side_ref[v][1]);
            lua__expect_into(L, lua_gettop(L), &t->expect[v]);
            lua_pop(L, 1);
        }
    }
    s->soft_line = 0;
    return 0;
}

/* The declaration errors collected while loading come first (in file
 * order), then the error that stopped the file, if any: one line each. */
static void lua__join_errors(scenario_t *s) {
    if (s->soft_errors == 0) return;
    char stop[SCN_ERR_MAX];
    snprintf(stop, sizeof stop, "%s", s->err);
    int n = snprintf(s->err, sizeof s->err, "%s", s->soft_err);
    if (s->soft_errors > SCN_SOFT_ERRORS_MAX && n >= 0 && (size_t)n < sizeof s->err)
        n += snprintf(s->err + n, sizeof s->err - (size_t)n, "\n%s: and %u more errors", s->path,
                      s->soft_errors - SCN_SOFT_ERRORS_MAX);
    if (stop[0] != '\0' && n >= 0 && (size_t)n < sizeof s->err)
        snprintf(s->err + n, sizeof s->err - (size_t)n, "\n%s", stop);
}

int scenario_new(const char *path, uint64_t seed, scenario_t **out, char *err, size_t err_cap) {
    assert(path != NULL && out != NULL);
    *out = NULL;
    if (strlen(path) >= SCN_PATH_MAX) {
        snprintf(err, err_cap, "%s: path too long", path);
        return -1;
    }
    scenario_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, err_cap, "%s: out of memory", path);
        return -1;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    lua__defaults(s, path);
    sim_prng_init(&s->lua_prng, seed, SIM_STREAM_LUA);
    s->L = lua_newstate(lua__alloc, s);
    if (s->L == NULL) {
        snprintf(err, err_cap, "%s: cannot create a Lua state", path);
        free(s);
        return -1;
    }
    lua_State *L = s->L;
    s->lua_steps_left = SCN_LUA_STEPS_MAX;
    lua_sethook(L, lua__hook, LUA_MASKCOUNT, LUA__HOOK_STEPS);
    int rc = LUA_OK;
    lua_pushcfunction(L, lua__open);
    rc = lua_pcall(L, 0, 0, 0);
    if (rc == LUA_OK) {
        lua_pushcfunction(L, lua__msgh);
        const int h = lua_gettop(L);
        rc = luaL_loadfilex(L, path, "t");
        if (rc == LUA_OK) rc = lua_pcall(L, 0, 0, h);
        if (rc == LUA_OK && s->teach.present) {
            lua_pushcfunction(L, lua__teach_sides);
            rc = lua_pcall(L, 0, 0, h);
        }
    }
    if (rc != LUA_OK) {
        lua__normalize(s, lua_tostring(L, -1), 0, s->err, sizeof s->err);
    } else if (s->soft_errors == 0 && lua__validate(s) == 0) {
        lua_settop(L, 0);
        *out = s;
        return 0;
    }
    lua__join_errors(s);
    snprintf(err, err_cap, "%s", s->err);
    scenario_free(s);
    return -1;
}

void scenario_free(scenario_t *s) {
    if (s == NULL) return;
    if (s->L != NULL) lua_close(s->L);
    free(s);
}

int scenario_call_action(scenario_t *s, uint32_t index) {
    assert(s != NULL && s->L != NULL);
    assert(index < s->actions_count);
    lua_State *L = s->L;
    const scn_action_t *a = &s->actions[index];
    s->lua_steps_left = SCN_LUA_STEPS_MAX;
    lua_pushcfunction(L, lua__msgh);
    const int h = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->ref);
    const int rc = lua_pcall(L, 0, 0, h);
    if (rc != LUA_OK) {
        char msg[SCN_ERR_MAX];
        lua__normalize(s, lua_tostring(L, -1), a->line, msg, sizeof msg);
        snprintf(s->err, sizeof s->err, "%.900s (in the action declared at line %d)", msg, a->line);
    }
    lua_settop(L, h - 1);
    return rc == LUA_OK ? 0 : -1;
}

/* broker/config.c — the node's strategy configuration: defaults, parsing
 * "key=value" text (CLI flags, Lua), validation and formatting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/node.h"

void broker_config_default(broker_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->id = 0;
    cfg->replicas = 3;
    cfg->acks = BROKER_ACKS_QUORUM;
    cfg->fsync = BROKER_FSYNC_ALWAYS;
    cfg->fsync_interval_ns = UINT64_C(100000000);
    cfg->election = BROKER_ELECTION_SAFE;
    cfg->dedup = true;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
    cfg->delivery_limit = 0;
    cfg->session_timeout_ns = UINT64_C(2000000000);
    cfg->ack_timeout_ns = 0;
    cfg->election_timeout_min_ns = UINT64_C(300000000);
    cfg->election_timeout_max_ns = UINT64_C(600000000);
    cfg->heartbeat_interval_ns = UINT64_C(50000000);
    /* Each snapshot serialises the whole state (every queued body): taking
     * one every 20k entries cost the 3-node benchmark ~30%. The log keeps at
     * most 1.5x this many entries in memory. */
    cfg->snapshot_every_entries = 100000;
    cfg->segment_size_bytes = 4u * 1024u * 1024u;
}

static int config__u64(const char *value, uint64_t max, uint64_t *out) {
    if (value == NULL || *value == '\0' || *value == '-') return -1;
    char *end = NULL;
    unsigned long long v = strtoull(value, &end, 10);
    if (end == value || *end != '\0' || v > max) return -1;
    *out = v;
    return 0;
}

static int config__bool(const char *value, bool *out) {
    if (strcmp(value, "on") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(value, "off") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

#define MS UINT64_C(1000000)

int broker_config_set(broker_config_t *cfg, const char *key, const char *value,
                      char *err, size_t err_cap) {
    uint64_t v = 0;
    int rc = -1;
    const char *want = "";
    if (key == NULL || value == NULL) {
        snprintf(err, err_cap, "missing key or value");
        return -1;
    }
    if (strcmp(key, "replicas") == 0) {
        want = "1..7";
        if (config__u64(value, BROKER_REPLICAS_MAX, &v) == 0 && v >= 1) {
            cfg->replicas = (uint32_t)v;
            rc = 0;
        }
    } else if (strcmp(key, "acks") == 0) {
        want = "leader|quorum";
        if (strcmp(value, "leader") == 0) { cfg->acks = BROKER_ACKS_LEADER; rc = 0; }
        if (strcmp(value, "quorum") == 0) { cfg->acks = BROKER_ACKS_QUORUM; rc = 0; }
    } else if (strcmp(key, "fsync") == 0) {
        want = "always|never|interval:<ms>";
        if (strcmp(value, "always") == 0) { cfg->fsync = BROKER_FSYNC_ALWAYS; rc = 0; }
        else if (strcmp(value, "never") == 0) { cfg->fsync = BROKER_FSYNC_NEVER; rc = 0; }
        else if (strncmp(value, "interval:", 9) == 0 &&
                 config__u64(value + 9, 3600000, &v) == 0 && v >= 1) {
            cfg->fsync = BROKER_FSYNC_INTERVAL;
            cfg->fsync_interval_ns = v * MS;
            rc = 0;
        }
    } else if (strcmp(key, "election") == 0) {
        want = "safe|unclean";
        if (strcmp(value, "safe") == 0) { cfg->election = BROKER_ELECTION_SAFE; rc = 0; }
        if (strcmp(value, "unclean") == 0) { cfg->election = BROKER_ELECTION_UNCLEAN; rc = 0; }
    } else if (strcmp(key, "dedup") == 0) {
        want = "on|off";
        rc = config__bool(value, &cfg->dedup);
    } else if (strcmp(key, "pre_vote") == 0) {
        want = "on|off";
        rc = config__bool(value, &cfg->pre_vote);
    } else if (strcmp(key, "check_quorum") == 0) {
        want = "on|off";
        rc = config__bool(value, &cfg->check_quorum);
    } else if (strcmp(key, "delivery_limit") == 0) {
        want = "0..1000000 (0 = unlimited)";
        if (config__u64(value, 1000000, &v) == 0) { cfg->delivery_limit = (uint32_t)v; rc = 0; }
    } else if (strcmp(key, "session_timeout_ms") == 0) {
        want = "10..3600000";
        if (config__u64(value, 3600000, &v) == 0 && v >= 10) { cfg->session_timeout_ns = v * MS; rc = 0; }
    } else if (strcmp(key, "ack_timeout_ms") == 0) {
        want = "0..3600000 (0 = never)";
        if (config__u64(value, 3600000, &v) == 0) { cfg->ack_timeout_ns = v * MS; rc = 0; }
    } else if (strcmp(key, "election_timeout_ms") == 0) {
        want = "20..60000";
        if (config__u64(value, 60000, &v) == 0 && v >= 20) {
            cfg->election_timeout_min_ns = v * MS;
            cfg->election_timeout_max_ns = 2 * v * MS;
            rc = 0;
        }
    } else if (strcmp(key, "heartbeat_ms") == 0) {
        want = "1..10000";
        if (config__u64(value, 10000, &v) == 0 && v >= 1) { cfg->heartbeat_interval_ns = v * MS; rc = 0; }
    } else if (strcmp(key, "snapshot_every") == 0) {
        want = "100..10000000";
        if (config__u64(value, 10000000, &v) == 0 && v >= 100) { cfg->snapshot_every_entries = v; rc = 0; }
    } else {
        snprintf(err, err_cap,
                 "unknown strategy key '%s' (known: replicas, acks, fsync, election, dedup, "
                 "delivery_limit, session_timeout_ms, ack_timeout_ms, election_timeout_ms, "
                 "heartbeat_ms, snapshot_every, pre_vote, check_quorum)", key);
        return -1;
    }
    if (rc != 0) snprintf(err, err_cap, "bad value '%s' for %s (want %s)", value, key, want);
    return rc;
}

int broker_config_check(const broker_config_t *cfg, char *err, size_t err_cap) {
    if (cfg->replicas < 1 || cfg->replicas > BROKER_REPLICAS_MAX) {
        snprintf(err, err_cap, "replicas must be 1..%u", BROKER_REPLICAS_MAX);
        return -1;
    }
    if (cfg->id >= cfg->replicas) {
        snprintf(err, err_cap, "node id %u is not below replicas=%u", cfg->id, cfg->replicas);
        return -1;
    }
    if (cfg->heartbeat_interval_ns == 0 ||
        cfg->election_timeout_min_ns <= 2 * cfg->heartbeat_interval_ns ||
        cfg->election_timeout_max_ns <= cfg->election_timeout_min_ns) {
        snprintf(err, err_cap, "election timeout must exceed twice the heartbeat interval");
        return -1;
    }
    if (cfg->session_timeout_ns == 0) {
        snprintf(err, err_cap, "session timeout must be positive");
        return -1;
    }
    if (cfg->fsync == BROKER_FSYNC_INTERVAL && cfg->fsync_interval_ns == 0) {
        snprintf(err, err_cap, "fsync interval must be positive");
        return -1;
    }
    return 0;
}

void broker_config_format(const broker_config_t *cfg, char *buf, size_t cap) {
    char fsync[32];
    if (cfg->fsync == BROKER_FSYNC_INTERVAL)
        snprintf(fsync, sizeof fsync, "interval:%llu",
                 (unsigned long long)(cfg->fsync_interval_ns / MS));
    else
        snprintf(fsync, sizeof fsync, "%s", cfg->fsync == BROKER_FSYNC_ALWAYS ? "always" : "never");
    snprintf(buf, cap, "replicas=%u acks=%s fsync=%s election=%s dedup=%s delivery_limit=%u",
             cfg->replicas, cfg->acks == BROKER_ACKS_QUORUM ? "quorum" : "leader", fsync,
             cfg->election == BROKER_ELECTION_SAFE ? "safe" : "unclean",
             cfg->dedup ? "on" : "off", cfg->delivery_limit);
}

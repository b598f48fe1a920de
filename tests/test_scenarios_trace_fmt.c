/* tests/test_scenarios_trace_fmt.c — the decoded trace: one line per wire
 * message kind, log writes and fsyncs with their indexes, faults, the JSON
 * form, and following one message to where it was lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/node.h"
#include "broker/raft.h"
#include "broker/sm.h"
#include "broker/tokens.h"
#include "broker/wire.h"
#include "scenarios/trace_fmt.h"
#include "sim/sim.h"

#define REPLICAS 3u
#define CLIENT0 3u /* host index of c0 */

static char line[TRACE_FMT_LINE_MAX];

/* Render one delivered wire message from -> to. */
static const char *msg_line(trace_fmt_t *tf, const char *kind, uint32_t from, uint32_t to,
                            const wire_msg_t *m, int *touches) {
    static uint8_t frame[65536];
    const int n = wire_encode(m, frame, sizeof frame);
    assert_true(n > 0);
    char detail[64];
    snprintf(detail, sizeof detail, "from=%u len=%d%s", from, n,
             strcmp(kind, "msg.lost") == 0 ? " why=blocked" : "");
    trace_fmt_event_t ev = {.time_ns = 1500000000u, .host = to, .kind = kind, .detail = detail,
                            .bytes = frame, .len = (size_t)n};
    trace_fmt_line(tf, &ev, line, sizeof line, touches);
    return line;
}

/* A PUBLISH state-machine command carrying client message `id`. */
static size_t publish_cmd(uint64_t id, uint64_t producer, uint64_t seq, uint8_t *out, size_t cap) {
    uint8_t env[256];
    const uint8_t body[4] = {1, 2, 3, 4};
    const size_t env_len = broker_envelope_size(0, sizeof body);
    assert_true(env_len <= sizeof env);
    broker_envelope_encode(env, id, NULL, 0, body, sizeof body);
    broker_sm_cmd_t cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = SM_CMD_PUBLISH;
    cmd.exchange = broker_sm_str("");
    cmd.key = broker_sm_str("orders");
    cmd.persistent = 1;
    cmd.producer_id = producer;
    cmd.sequence = seq;
    cmd.body = env;
    cmd.body_len = (uint32_t)env_len;
    size_t len = 0;
    assert_int_equal(broker_sm_cmd_encode(&cmd, out, cap, &len), 0);
    return len;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8u * i));
}

/* One on-disk log record (broker/log.h layout; the CRC is not checked here). */
static size_t log_record(uint64_t term, uint64_t index, const uint8_t *payload, size_t len,
                         uint8_t *out) {
    put_le(out, len, 4);
    put_le(out + 4, 0, 4);
    put_le(out + 8, term, 8);
    put_le(out + 16, index, 8);
    out[24] = RAFT_ENTRY_COMMAND;
    memcpy(out + 25, payload, len);
    return 25 + len;
}

static const char *disk_line(trace_fmt_t *tf, uint32_t host, const char *op, const uint8_t *bytes,
                             size_t len, int *touches) {
    char detail[160];
    snprintf(detail, sizeof detail, "op=%s file=log-00000000000000000001 token=%llu result=%zu", op,
             (unsigned long long)broker_token_make(BROKER_TOKEN_LOG, 7), len);
    trace_fmt_event_t ev = {.time_ns = 2000000000u, .host = host, .kind = "disk", .detail = detail,
                            .bytes = bytes, .len = len};
    trace_fmt_line(tf, &ev, line, sizeof line, touches);
    return line;
}

static void test_parse(void **state) {
    (void)state;
    trace_fmt_kind_t k = TRACE_FMT_JSON;
    assert_int_equal(trace_fmt_parse("text", &k), 0);
    assert_int_equal(k, TRACE_FMT_TEXT);
    assert_int_equal(trace_fmt_parse("json", &k), 0);
    assert_int_equal(k, TRACE_FMT_JSON);
    assert_int_equal(trace_fmt_parse("xml", &k), -1);
    assert_int_equal(trace_fmt_parse("", &k), -1);
    assert_int_equal(trace_fmt_parse(NULL, &k), -1);
}

static void test_peer_messages(void **state) {
    (void)state;
    trace_fmt_t *tf = trace_fmt_new(REPLICAS, TRACE_FMT_TEXT);
    assert_non_null(tf);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_REQUEST_VOTE;
    m.request_vote = (wire_request_vote_t){.term = 4, .candidate_id = 1, .last_log_index = 41,
                                           .last_log_term = 3, .pre_vote = 0};
    assert_string_equal(msg_line(tf, "msg", 1, 0, &m, NULL),
                        "1.500000000 n0 msg.recv from=n1 type=REQUEST_VOTE term=4 candidate=1 "
                        "last_index=41 last_term=3 pre_vote=0\n");
    m.type = WIRE_MSG_VOTE_RESPONSE;
    m.vote_response = (wire_vote_response_t){.term = 4, .voter_id = 0, .granted = 1};
    assert_non_null(strstr(msg_line(tf, "msg", 0, 1, &m, NULL),
                           "type=VOTE_RESPONSE term=4 voter=0 granted=1 pre_vote=0"));
    /* AppendEntries with one publish entry: range, commit and the id inside */
    uint8_t cmd[512];
    const size_t cmd_len = publish_cmd(0x10000000068u, 2, 104, cmd, sizeof cmd);
    wire_entry_t e = {.term = 4, .index = 42, .type = RAFT_ENTRY_COMMAND,
                      .payload = {cmd, (uint32_t)cmd_len}};
    m.type = WIRE_MSG_APPEND_ENTRIES;
    m.append_entries = (wire_append_entries_t){.term = 4, .leader_id = 1, .prev_log_index = 41,
                                               .prev_log_term = 3, .leader_commit = 40,
                                               .entry_count = 1, .entries = &e};
    assert_non_null(strstr(msg_line(tf, "msg", 1, 2, &m, NULL),
                           "n2 msg.recv from=n1 type=APPEND_ENTRIES term=4 leader=1 prev_index=41 "
                           "prev_term=3 commit=40 entries=1 first=42 last=42 last_term=4 "
                           "publish=0x10000000068"));
    m.type = WIRE_MSG_APPEND_RESPONSE;
    m.append_response = (wire_append_response_t){.term = 4, .follower_id = 2, .success = 0,
                                                 .match_index = 41, .conflict_index = 30,
                                                 .conflict_term = 2};
    assert_non_null(strstr(msg_line(tf, "msg", 2, 1, &m, NULL),
                           "type=APPEND_RESPONSE term=4 follower=2 success=0 match=41 "
                           "conflict_index=30 conflict_term=2"));
    m.type = WIRE_MSG_INSTALL_SNAPSHOT;
    const uint8_t chunk[3] = {9, 9, 9};
    m.install_snapshot = (wire_install_snapshot_t){.term = 5, .leader_id = 1,
                                                   .last_included_index = 100,
                                                   .last_included_term = 4, .offset = 0,
                                                   .done = 1, .data = {chunk, 3}};
    assert_non_null(strstr(msg_line(tf, "msg", 1, 0, &m, NULL),
                           "type=INSTALL_SNAPSHOT term=5 leader=1 last_index=100 last_term=4 "
                           "offset=0 bytes=3 done=1"));
    /* dropped at send by a cut link: the reason is named */
    m.type = WIRE_MSG_TIMEOUT_NOW;
    m.timeout_now = (wire_timeout_now_t){.term = 5, .leader_id = 1};
    assert_string_equal(msg_line(tf, "msg.lost", 1, 0, &m, NULL),
                        "1.500000000 n0 msg.lost from=n1 type=TIMEOUT_NOW term=5 leader=1 "
                        "why=blocked\n");
    trace_fmt_free(tf);
}

static void test_client_messages(void **state) {
    (void)state;
    trace_fmt_t *tf = trace_fmt_new(REPLICAS, TRACE_FMT_TEXT);
    assert_non_null(tf);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_PUBLISH;
    m.publish = (wire_publish_t){.request_id = 7, .producer_id = 2, .sequence = 104,
                                 .message_id = 0x10000000068u, .routing_key = wire_str("orders"),
                                 .persistent = 1, .body = wire_str("abcd")};
    assert_string_equal(msg_line(tf, "msg", CLIENT0, 0, &m, NULL),
                        "1.500000000 n0 msg.recv from=c0 type=PUBLISH msg=0x10000000068 producer=2 "
                        "seq=104 request=7 exchange=\"\" key=orders persistent=1 bytes=4\n");
    m.type = WIRE_MSG_CONFIRM;
    m.confirm = (wire_confirm_t){.request_id = 7, .producer_id = 2, .sequence = 104};
    assert_non_null(strstr(msg_line(tf, "msg", 0, CLIENT0, &m, NULL),
                           "c0 msg.recv from=n0 type=CONFIRM producer=2 seq=104 request=7 "
                           "duplicate=0 unroutable=0"));
    m.type = WIRE_MSG_NACK_PUBLISH;
    m.nack_publish = (wire_nack_publish_t){.request_id = 8, .producer_id = 2, .sequence = 105,
                                           .reason = WIRE_STATUS_NOT_LEADER};
    assert_non_null(strstr(msg_line(tf, "msg", 0, CLIENT0, &m, NULL),
                           "type=NACK_PUBLISH producer=2 seq=105 request=8 reason=NOT_LEADER"));
    m.type = WIRE_MSG_DELIVER;
    m.deliver = (wire_deliver_t){.consumer_tag = wire_str("c1.1"), .delivery_tag = 9,
                                 .message_id = 0x10000000068u, .producer_id = 2, .sequence = 104,
                                 .redelivered = 1, .delivery_count = 2};
    assert_non_null(strstr(msg_line(tf, "msg", 0, CLIENT0 + 1, &m, NULL),
                           "c1 msg.recv from=n0 type=DELIVER msg=0x10000000068 producer=2 seq=104 "
                           "tag=9 consumer=c1.1 redelivered=1 count=2"));
    m.type = WIRE_MSG_ACK;
    m.ack = (wire_ack_t){.delivery_tag = 9, .multiple = 0, .session_id = 3};
    assert_non_null(strstr(msg_line(tf, "msg", CLIENT0 + 1, 0, &m, NULL),
                           "type=ACK tag=9 multiple=0 session=3"));
    m.type = WIRE_MSG_NACK;
    m.nack = (wire_nack_t){.delivery_tag = 9, .multiple = 1, .requeue = 1, .session_id = 3};
    assert_non_null(strstr(msg_line(tf, "msg", CLIENT0 + 1, 0, &m, NULL),
                           "type=NACK tag=9 multiple=1 requeue=1 session=3"));
    m.type = WIRE_MSG_REJECT;
    m.reject = (wire_reject_t){.delivery_tag = 9, .requeue = 0, .session_id = 3};
    assert_non_null(strstr(msg_line(tf, "msg", CLIENT0 + 1, 0, &m, NULL),
                           "type=REJECT tag=9 multiple=0 requeue=0 session=3"));
    m.type = WIRE_MSG_HEARTBEAT;
    m.heartbeat = (wire_heartbeat_t){.session_id = 3, .timestamp_ns = 55};
    assert_non_null(strstr(msg_line(tf, "msg", CLIENT0, 0, &m, NULL),
                           "type=HEARTBEAT session=3 timestamp_ns=55"));
    m.type = WIRE_MSG_NOT_LEADER;
    m.not_leader = (wire_not_leader_t){.request_id = 7, .leader_hint = WIRE_NODE_NONE};
    assert_non_null(strstr(msg_line(tf, "msg", 0, CLIENT0, &m, NULL),
                           "type=NOT_LEADER request=7 leader_hint=none"));
    trace_fmt_free(tf);
}

static void test_undecodable_and_world_events(void **state) {
    (void)state;
    trace_fmt_t *tf = trace_fmt_new(REPLICAS, TRACE_FMT_TEXT);
    const uint8_t junk[16] = {'C', 'L', WIRE_VERSION, 1, 4, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
    trace_fmt_event_t ev = {.time_ns = 1, .host = 0, .kind = "msg.drop",
                            .detail = "from=1 len=16 why=down", .bytes = junk, .len = sizeof junk};
    trace_fmt_line(tf, &ev, line, sizeof line, NULL);
    assert_string_equal(line, "0.000000001 n0 msg.drop from=n1 type=undecodable error=WIRE_ECRC "
                              "bytes=16 why=down\n");
    ev = (trace_fmt_event_t){.time_ns = 1, .host = 2, .kind = "msg.corrupt",
                             .detail = "from=0 len=16 bit=77", .bytes = junk, .len = sizeof junk};
    trace_fmt_line(tf, &ev, line, sizeof line, NULL);
    assert_string_equal(line, "0.000000001 n2 msg.corrupt from=n0 type=undecodable error=WIRE_ECRC "
                              "bytes=16 bit=77\n");
    ev = (trace_fmt_event_t){.time_ns = 3000000000u, .host = SIM_ANY, .kind = "fault",
                             .detail = "isolate", .fault_target = "n0"};
    trace_fmt_line(tf, &ev, line, sizeof line, NULL);
    assert_string_equal(line, "3.000000000 - fault.isolate target=n0\n");
    ev = (trace_fmt_event_t){.time_ns = 0, .host = 1, .kind = "trace", .detail = "raft.leader",
                             .term = 3, .role_name = "leader"};
    trace_fmt_line(tf, &ev, line, sizeof line, NULL);
    assert_string_equal(line, "0.000000000 n1 raft.leader term=3 role=leader\n");
    ev = (trace_fmt_event_t){.time_ns = 0, .host = 2, .kind = "timer",
                             .detail = "token=288230376151711749"}; /* owner 4 = raft, local 5 */
    trace_fmt_line(tf, &ev, line, sizeof line, NULL);
    assert_string_equal(line, "0.000000000 n2 timer owner=raft local=5\n");
    ev = (trace_fmt_event_t){.time_ns = 0, .host = 0, .kind = "crash", .detail = "incarnation=2"};
    trace_fmt_line(tf, &ev, line, sizeof line, NULL);
    assert_string_equal(line, "0.000000000 n0 host.crash incarnation=2\n");
    trace_fmt_free(tf);
}

/* Log writes name their index range and the ids inside; an fsync names the
 * durable index; a later write at the focus message's index is the overwrite
 * that loses it, and the summary says so. */
static void test_log_write_fsync_and_overwrite(void **state) {
    (void)state;
    trace_fmt_t *tf = trace_fmt_new(REPLICAS, TRACE_FMT_TEXT);
    trace_fmt_focus(tf, 0x10000000068u);
    uint8_t cmd[512], rec[1024];
    size_t n = publish_cmd(0x10000000068u, 2, 104, cmd, sizeof cmd);
    size_t len = log_record(3, 42, cmd, n, rec);
    n = publish_cmd(0x10000000069u, 2, 105, cmd, sizeof cmd);
    len += log_record(3, 43, cmd, n, rec + len);
    int touches = 0;
    disk_line(tf, 0, "write", rec, len, &touches);
    assert_int_equal(touches, 1);
    assert_non_null(strstr(line, "n0 log.write file=log-00000000000000000001 bytes="));
    assert_non_null(strstr(line, "first=42 last=43 last_term=3 entries=2 "
                                 "publish=0x10000000068,0x10000000069"));
    disk_line(tf, 0, "fsync", NULL, 0, &touches);
    assert_int_equal(touches, 1);
    assert_non_null(strstr(line, "n0 log.fsync file=log-00000000000000000001 durable=43 "
                                 "focus_durable=42"));
    /* an fsync on another replica that never held it does not touch it */
    disk_line(tf, 1, "fsync", NULL, 0, &touches);
    assert_int_equal(touches, 0);
    /* the new leader's entry replaces index 42 */
    n = publish_cmd(0x2000000039eu, 3, 7, cmd, sizeof cmd);
    len = log_record(4, 42, cmd, n, rec);
    disk_line(tf, 0, "write", rec, len, &touches);
    assert_int_equal(touches, 1);
    assert_non_null(strstr(line, "overwrote_focus=\"entry 42 term 3 by term 4\""));
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    trace_fmt_focus_summary(tf, f);
    fclose(f);
    assert_non_null(strstr(text, "n0: entry 42 term 3: fsynced, then OVERWRITTEN"));
    assert_non_null(strstr(text, "ended: LOST: no replica kept it (entry 42 term 3 overwritten by "
                                 "term 4 on n0)"));
    free(text);
    trace_fmt_free(tf);
}

/* Written but never fsynced when the machine crashed: lost on that node. */
static void test_crash_loses_unsynced_entry(void **state) {
    (void)state;
    trace_fmt_t *tf = trace_fmt_new(REPLICAS, TRACE_FMT_TEXT);
    trace_fmt_focus(tf, 0x30000000001u);
    uint8_t cmd[512], rec[1024];
    const size_t n = publish_cmd(0x30000000001u, 4, 1, cmd, sizeof cmd);
    const size_t len = log_record(2, 9, cmd, n, rec);
    int touches = 0;
    disk_line(tf, 1, "write", rec, len, &touches);
    assert_int_equal(touches, 1);
    trace_fmt_event_t ev = {.time_ns = 5, .host = 1, .kind = "crash", .detail = "incarnation=1"};
    trace_fmt_line(tf, &ev, line, sizeof line, &touches);
    assert_int_equal(touches, 1);
    assert_non_null(strstr(line, "n1 host.crash incarnation=1 lost_focus=\"entry 9 term 2 not "
                                 "fsynced (durable 0)\""));
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    trace_fmt_focus_summary(tf, f);
    fclose(f);
    assert_non_null(strstr(text, "entry 9 term 2 not fsynced when n1 crashed"));
    free(text);
    trace_fmt_free(tf);
}

/* The focus follows a publish through confirm, delivery and ack, and a
 * message never seen says so. */
static void test_focus_client_side(void **state) {
    (void)state;
    trace_fmt_t *tf = trace_fmt_new(REPLICAS, TRACE_FMT_TEXT);
    trace_fmt_focus(tf, 0x10000000068u);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    int touches = 0;
    m.type = WIRE_MSG_PUBLISH;
    m.publish = (wire_publish_t){.request_id = 7, .producer_id = 2, .sequence = 104,
                                 .message_id = 0x10000000099u, .routing_key = wire_str("q")};
    msg_line(tf, "msg", CLIENT0, 0, &m, &touches);
    assert_int_equal(touches, 0); /* another message */
    m.publish.message_id = 0x10000000068u;
    msg_line(tf, "msg", CLIENT0, 0, &m, &touches);
    assert_int_equal(touches, 1);
    m.type = WIRE_MSG_CONFIRM;
    m.confirm = (wire_confirm_t){.request_id = 7, .producer_id = 2, .sequence = 104};
    msg_line(tf, "msg", 0, CLIENT0, &m, &touches);
    assert_int_equal(touches, 1);
    assert_non_null(strstr(line, "msg=0x10000000068"));
    m.type = WIRE_MSG_DELIVER;
    m.deliver = (wire_deliver_t){.consumer_tag = wire_str("c"), .delivery_tag = 5,
                                 .message_id = 0x10000000068u, .producer_id = 2, .sequence = 104};
    msg_line(tf, "msg", 0, CLIENT0 + 1, &m, &touches);
    assert_int_equal(touches, 1);
    m.type = WIRE_MSG_ACK;
    m.ack = (wire_ack_t){.delivery_tag = 4, .session_id = 1};
    msg_line(tf, "msg", CLIENT0 + 1, 0, &m, &touches);
    assert_int_equal(touches, 0); /* another delivery */
    m.ack = (wire_ack_t){.delivery_tag = 6, .multiple = 1, .session_id = 1};
    msg_line(tf, "msg", CLIENT0 + 1, 0, &m, &touches);
    assert_int_equal(touches, 1); /* multiple covers tag 5 */
    m.ack = (wire_ack_t){.delivery_tag = 5, .session_id = 2};
    msg_line(tf, "msg", CLIENT0 + 1, 0, &m, &touches);
    assert_int_equal(touches, 0); /* tag 5 of a later session is another delivery */
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    trace_fmt_focus_summary(tf, f);
    fclose(f);
    assert_non_null(strstr(text, "1 confirm(s)"));
    assert_non_null(strstr(text, "1 delivery(ies), 1 ack(s)"));
    assert_non_null(strstr(text, "ended: settled: a consumer acked it"));
    free(text);
    trace_fmt_focus(tf, 0x777u);
    trace_fmt_t *fresh = trace_fmt_new(REPLICAS, TRACE_FMT_TEXT);
    trace_fmt_focus(fresh, 0x777u);
    f = open_memstream(&text, &size);
    trace_fmt_focus_summary(fresh, f);
    fclose(f);
    assert_non_null(strstr(text, "never seen: no PUBLISH or log entry"));
    free(text);
    trace_fmt_free(fresh);
    trace_fmt_free(tf);
}

/* JSON lines: one object, typed numbers, escaped strings. */
static void test_json_lines(void **state) {
    (void)state;
    trace_fmt_t *tf = trace_fmt_new(REPLICAS, TRACE_FMT_JSON);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_PUBLISH;
    m.publish = (wire_publish_t){.request_id = 7, .producer_id = 2, .sequence = 104,
                                 .message_id = 0x10000000068u, .routing_key = wire_str("a\"b")};
    assert_string_equal(msg_line(tf, "msg", CLIENT0, 0, &m, NULL),
                        "{\"t_ns\":1500000000,\"host\":\"n0\",\"event\":\"msg.recv\",\"from\":\"c0\","
                        "\"type\":\"PUBLISH\",\"msg\":\"0x10000000068\",\"producer\":2,\"seq\":104,"
                        "\"request\":7,\"exchange\":\"\",\"key\":\"a\\\"b\",\"persistent\":0,"
                        "\"bytes\":0}\n");
    trace_fmt_event_t ev = {.time_ns = 2, .host = SIM_ANY, .kind = "log",
                            .detail = "say \"hi\"\tnow"};
    trace_fmt_line(tf, &ev, line, sizeof line, NULL);
    assert_string_equal(line, "{\"t_ns\":2,\"host\":\"-\",\"event\":\"scenario.log\","
                              "\"text\":\"say \\\"hi\\\"\\u0009now\"}\n");
    trace_fmt_free(tf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_peer_messages),
        cmocka_unit_test(test_client_messages),
        cmocka_unit_test(test_undecodable_and_world_events),
        cmocka_unit_test(test_log_write_fsync_and_overwrite),
        cmocka_unit_test(test_crash_loses_unsynced_entry),
        cmocka_unit_test(test_focus_client_side),
        cmocka_unit_test(test_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

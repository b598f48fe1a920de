/*
 * bench/bench_kernel.c — raw simulation kernel throughput.
 *
 * Three hosts bounce 32-byte messages through the virtual network (uniform
 * jitter, FIFO links): every delivery answers with one message to a random
 * other host, so the number of messages in flight stays constant and every
 * event is a full message round through the kernel (heap pop, trace hash,
 * handler, PRNG draws, payload copy, heap push). Runs 10,000,000 events.
 *
 * Output (one per line): events=N, events_per_sec=N, ns_per_event=N,
 * trace_hash=HEX. Use a Release build for meaningful numbers. The wall clock
 * is read here, outside the simulation, only to time it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/sim.h"

#define BENCH_HOSTS 3u
#define BENCH_EVENTS 10000000u
#define BENCH_WINDOW 64u /* messages each host starts with, per peer */
#define BENCH_MSG_BYTES 32u

typedef struct bench_node {
    const io_t *io;
    uint64_t received;
} bench_node_t;

static void *bench_boot(void *arg, const io_t *io) {
    bench_node_t *n = &((bench_node_t *)arg)[io->self];
    n->io = io;
    uint8_t msg[BENCH_MSG_BYTES] = {0};
    for (uint32_t k = 0; k < BENCH_WINDOW; k++)
        for (uint32_t p = 1; p < BENCH_HOSTS; p++)
            (void)io_send(io, (io->self + p) % BENCH_HOSTS, msg, sizeof(msg));
    return n;
}

static void bench_halt(void *node, int graceful) {
    (void)node;
    (void)graceful;
}

static void bench_on_message(void *node, io_addr_t from, const uint8_t *b,
                             size_t len) {
    bench_node_t *n = node;
    (void)from;
    n->received++;
    uint8_t msg[BENCH_MSG_BYTES] = {0};
    memcpy(msg, b, len < sizeof(msg) ? len : sizeof(msg));
    msg[0]++; /* payloads evolve, so the trace hash covers real content */
    uint64_t r = io_random_u64(n->io);
    io_addr_t to = (io_addr_t)((n->io->self + 1 + r % (BENCH_HOSTS - 1)) % BENCH_HOSTS);
    (void)io_send(n->io, to, msg, sizeof(msg));
}

static void bench_on_timer(void *node, uint64_t token) {
    (void)node;
    (void)token;
}

static void bench_on_disk(void *node, uint64_t token, int64_t result) {
    (void)node;
    (void)token;
    (void)result;
}

static const io_handler_t bench_handler = {bench_on_message, bench_on_timer,
                                           bench_on_disk};
static const io_program_t bench_program = {"bench", bench_boot, bench_halt,
                                           &bench_handler};

static double bench_wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    sim_t *sim;
    sim_config_t cfg = {seed, BENCH_HOSTS};
    if (sim_new(&cfg, &sim) != 0) {
        fprintf(stderr, "bench_kernel: sim_new failed\n");
        return 1;
    }
    static bench_node_t nodes[BENCH_HOSTS];
    sim_link_config_t lc;
    sim_link_config_default(&lc);
    lc.latency = (sim_dist_t){SIM_DIST_UNIFORM, 10000, 100000};
    if (sim_link_configure(sim, SIM_ANY, SIM_ANY, &lc) != 0) return 1;
    for (uint32_t i = 0; i < BENCH_HOSTS; i++) {
        if (sim_host_set_program(sim, i, &bench_program, nodes) != 0 ||
            sim_host_start(sim, i) != 0) {
            fprintf(stderr, "bench_kernel: host %u failed to start\n", i);
            return 1;
        }
    }
    double t0 = bench_wall_s();
    sim_run_result_t r = sim_run(sim, UINT64_MAX, BENCH_EVENTS);
    double t1 = bench_wall_s();
    uint64_t events = sim_events_processed(sim);
    double secs = t1 - t0 > 0 ? t1 - t0 : 1e-9;
    printf("events=%" PRIu64 "\n", events);
    printf("events_per_sec=%.0f\n", (double)events / secs);
    printf("ns_per_event=%.1f\n", secs * 1e9 / (double)events);
    printf("trace_hash=%016" PRIx64 "\n", sim_trace_hash(sim));
    printf("sim_time_ms=%.3f\n", (double)sim_now_ns(sim) / 1e6);
    sim_free(sim);
    return r == SIM_RUN_EVENT_LIMIT ? 0 : 1;
}

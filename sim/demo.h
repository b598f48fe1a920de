/*
 * sim/demo.h — a self-contained kernel demo (what the README runs until the
 * scenario runner exists).
 */
#ifndef CHAOSLAB_SIM_DEMO_H
#define CHAOSLAB_SIM_DEMO_H

#include <stdint.h>
#include <stdio.h>

/* Simulate 3 hosts running a small ping/gossip program that keeps a durable
 * counter on its disk, through jitter, a loss period, a partition, a
 * crash + restart (the counter is recovered from disk) and a pause/resume;
 * print what happened to `out` (owned by the caller). Deterministic: the
 * same seed prints the same text. Returns 0, or a negative IO_E* code if the
 * world could not be built (nothing simulated then). */
int sim_demo_run(uint64_t seed, FILE *out);

#endif

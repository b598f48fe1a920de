/*
 * tests/support/tnet.h — shared helpers for the tests that use real
 * processes, sockets and temp dirs (test_cli_*, test_runtime_*).
 *
 * Every file in tests/support/ is compiled into every test program, so this
 * module uses only POSIX, cmocka and broker/wire.h (chaoslab_broker is linked
 * into every test through chaoslab_sim). No state: each helper works on what
 * the caller passes. Helpers that can only fail because the machine is broken
 * (socket(), fork()) fail the running cmocka test instead of returning.
 *
 * Everything is loopback-only (127.0.0.1) and every wait is bounded.
 */
#ifndef CHAOSLAB_TESTS_SUPPORT_TNET_H
#define CHAOSLAB_TESTS_SUPPORT_TNET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TNET_PATH_MAX 512         /* bytes of one path built by tnet_rm_tree */
#define TNET_RM_DEPTH_MAX 8       /* directory levels tnet_rm_tree descends */
#define TNET_RM_ENTRIES_MAX 65536 /* entries tnet_rm_tree reads per directory */
#define TNET_PORT_LO 20000        /* tnet_free_ports searches [LO, HI) */
#define TNET_PORT_HI 60000
#define TNET_PORT_TRIES_MAX 100   /* windows tnet_free_ports tries */
#define TNET_KERNEL_PORTS_MAX 16  /* ports one tnet_kernel_ports call picks */
#define TNET_WAIT_POLL_MS 10u     /* tnet_wait's polling period */
#define TNET_PROBE_TIMEOUT_MS 1000u

/* Milliseconds on CLOCK_MONOTONIC (for deadlines; never the wall clock). */
uint64_t tnet_now_ms(void);

/* Sleep about `ms` milliseconds (a signal may cut it short; callers poll). */
void tnet_sleep_ms(uint32_t ms);

/* ---- ports -------------------------------------------------------------- */

/* 1 if 127.0.0.1:port can be bound right now (SO_REUSEADDR, so TIME_WAIT
 * leftovers count as free), else 0. */
int tnet_port_free(int port);

/* `count` consecutive loopback ports that are free now; returns the first.
 * The search starts at a point derived from the pid times `salt`, so test
 * programs that pass different salts and run in parallel (ctest -j) start
 * in different places. Fails the test when no window of `count` is free
 * after TNET_PORT_TRIES_MAX tries. The ports are only probed, not held:
 * the caller must bind them soon. */
int tnet_free_ports(int count, unsigned salt);

/* `count` (<= TNET_KERNEL_PORTS_MAX) distinct loopback ports the kernel
 * hands out for bind(port 0) into ports[]; all sockets stay open until every
 * port is picked, so they differ, then are closed. Fails the test on error. */
void tnet_kernel_ports(uint16_t *ports, unsigned count);

/* A blocking TCP socket connected to 127.0.0.1:port (the caller closes it),
 * or -1 when nothing accepts there. */
int tnet_connect(int port);

/* Ask a broker's wire client port who it is: sends HEARTBEAT and waits up
 * to TNET_PROBE_TIMEOUT_MS. 1 = the leader (echoes HEARTBEAT), 0 = a
 * follower (NOT_LEADER), -1 = no usable answer (closed, silent, garbage). */
int tnet_wire_role(int port);
/* The same, sending the client port's token preamble first (NULL = none). */
int tnet_wire_role_token(int port, const char *token);

/* ---- files -------------------------------------------------------------- */

/* Remove `dir` and everything below it (TNET_RM_DEPTH_MAX levels; symlinks
 * are unlinked, never followed). Best effort: errors are ignored so a
 * teardown always finishes. */
void tnet_rm_tree(const char *dir);

/* The file's first cap - 1 bytes into buf, NUL-terminated (cap >= 1);
 * returns the byte count. A missing or unreadable file reads as "" (0). */
size_t tnet_read_file(const char *path, char *buf, size_t cap);

/* ---- child processes ---------------------------------------------------- */

/* fork + execv(argv[0], argv): argv[0] is a path, argv NULL-terminated.
 * The child's stdout and stderr go to out_path (created/truncated), its
 * stdin is /dev/null; exit 127 if exec fails. Returns the pid; the caller
 * owns reaping it (tnet_wait). Fails the test if fork fails. */
pid_t tnet_spawn(const char *const *argv, const char *out_path);

/* Wait up to timeout_ms for `pid` to exit and reap it. Returns its exit
 * code, -2 if a signal ended it, or -1 if it outlived the timeout (it is
 * then SIGKILLed and reaped) or was not our child. */
int tnet_wait(pid_t pid, uint32_t timeout_ms);

#endif

/*
 * runtime/uv_io.c — the io_methods table on libuv: lifecycle, clock, PRNG,
 * timers, self loopback, client hook, signals. Peers live in peers.c and
 * files in files.c.
 */
#include "runtime/uv_io.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "runtime/internal.h"

#define RT__NS_PER_MS UINT64_C(1000000)

/* ---- lifecycle helpers -------------------------------------------------- */

static void rt__io_release(rt_io_t *io) {
    assert(io->pending == 0);
    assert(io->state != RT__RUNNING);
    rt__disk_free(io);
    free(io->timers);
    free(io);
}

void rt__pending_done(rt_io_t *io) {
    assert(io != NULL);
    assert(io->pending > 0);
    io->pending--;
    if (io->pending == 0 && io->free_requested) rt__io_release(io);
}

void rt__handle_closed(uv_handle_t *handle) {
    assert(handle != NULL);
    rt_io_t *io = handle->data;
    assert(io != NULL);
    rt__pending_done(io);
}

static void rt__close_handle(rt_io_t *io, uv_handle_t *handle, uint8_t *open) {
    assert(io != NULL && handle != NULL);
    if (!*open) return;
    *open = 0;
    handle->data = io;
    uv_close(handle, rt__handle_closed);
}

int rt__node_live(const rt_io_t *io) {
    assert(io != NULL);
    return io->state == RT__RUNNING && io->node != NULL;
}

static void rt__do_stop(rt_io_t *io);

void rt__dispatch_begin(rt_io_t *io) {
    assert(rt__node_live(io));
    assert(io->dispatch_depth < 8); /* handlers do not nest deeply */
    io->dispatch_depth++;
}

void rt__dispatch_end(rt_io_t *io) {
    assert(io->dispatch_depth > 0);
    io->dispatch_depth--;
    if (io->dispatch_depth == 0 && io->stop_requested) rt__do_stop(io);
}

/* ---- PRNG: sim/prng.h's xoshiro256**, seeded from the OS ------------------ */

/* The seed of a real node need not be reproducible, only unpredictable
 * enough that two nodes (or two runs) do not share a stream. */
static uint64_t rt__os_seed(rt_io_t *io) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) == (ssize_t)sizeof(seed)) {
        return seed;
    }
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, &seed, sizeof(seed));
        close(fd);
        if (n == (ssize_t)sizeof(seed)) return seed;
    }
    rt_log_write(&io->log, RT_LOG_WARN, "no OS randomness; seeding from clock");
    return uv_hrtime() ^ ((uint64_t)getpid() << 32);
}

static void rt__rng_seed(rt_io_t *io, uint64_t seed) {
    /* One stream per seed (not per node): a fixed seed repeats exactly. */
    sim_prng_init(&io->rng, seed, SIM_STREAM_HOST_BASE);
}

static uint64_t rt__random_u64(void *ctx) {
    rt_io_t *io = ctx;
    assert(io != NULL);
    return sim_prng_next(&io->rng);
}

static uint64_t rt__now_ns(void *ctx) {
    assert(ctx != NULL);
    return uv_hrtime();
}

/* ---- timers ------------------------------------------------------------- */

static void rt__timer_cb(uv_timer_t *handle);

/* Index of the earliest armed timer (ties by arming order) among those armed
 * before `seq_limit` and due by `due_ns`; -1 if none. */
static int32_t rt__timer_earliest(const rt_io_t *io, uint64_t seq_limit,
                                  uint64_t due_ns) {
    assert(io->timers_count <= RT_TIMERS_MAX);
    int32_t best = -1;
    for (uint32_t i = 0; i < io->timers_count; i++) {
        const rt__timer_t *t = &io->timers[i];
        if (t->seq >= seq_limit || t->deadline_ns > due_ns) continue;
        if (best < 0 || t->deadline_ns < io->timers[best].deadline_ns ||
            (t->deadline_ns == io->timers[best].deadline_ns &&
             t->seq < io->timers[best].seq)) {
            best = (int32_t)i;
        }
    }
    return best;
}

static void rt__timer_remove(rt_io_t *io, uint32_t index) {
    assert(index < io->timers_count);
    io->timers_count--;
    io->timers[index] = io->timers[io->timers_count];
}

static int32_t rt__timer_find(const rt_io_t *io, uint64_t token) {
    for (uint32_t i = 0; i < io->timers_count; i++) {
        if (io->timers[i].token == token) return (int32_t)i;
    }
    return -1;
}

/* Point the one uv timer at the earliest deadline. */
static void rt__timer_rearm(rt_io_t *io) {
    assert(io->timer_open);
    int32_t first = rt__timer_earliest(io, UINT64_MAX, UINT64_MAX);
    if (first < 0) {
        uv_timer_stop(&io->timer);
        return;
    }
    /* libuv counts from its cached loop time; refresh it so the delay is
     * measured from now, not from the start of this loop turn. */
    uv_update_time(io->loop);
    uint64_t now_ns = uv_hrtime();
    uint64_t deadline_ns = io->timers[first].deadline_ns;
    uint64_t delay_ms = 0;
    if (deadline_ns > now_ns) {
        delay_ms = (deadline_ns - now_ns + RT__NS_PER_MS - 1) / RT__NS_PER_MS;
    }
    /* libuv runs a timer re-armed at 0 from its own callback again in the
     * same pass, so a handler re-arming in the past would starve I/O. */
    if (io->timer_firing && delay_ms == 0) delay_ms = 1;
    uv_timer_start(&io->timer, rt__timer_cb, delay_ms, 0);
}

static void rt__timer_cb(uv_timer_t *handle) {
    rt_io_t *io = handle->data;
    assert(io != NULL && io->timer_open);
    uint64_t now_ns = uv_hrtime();
    /* Timers armed by the handlers below wait for the next turn, so a
     * handler re-arming in the past cannot spin this loop forever. */
    uint64_t seq_limit = io->timer_seq;
    io->timer_firing = 1;
    for (uint32_t n = 0; n < RT_TIMERS_FIRE_MAX; n++) {
        if (!rt__node_live(io)) break;
        int32_t i = rt__timer_earliest(io, seq_limit, now_ns);
        if (i < 0) break;
        uint64_t token = io->timers[i].token;
        rt__timer_remove(io, (uint32_t)i);
        io->stats.timers_fired++;
        rt__dispatch_begin(io);
        io->program->handler->on_timer(io->node, token);
        rt__dispatch_end(io);
    }
    if (io->state == RT__RUNNING) rt__timer_rearm(io);
    io->timer_firing = 0;
}

static int rt__timer_set(void *ctx, uint64_t deadline_ns, uint64_t token) {
    rt_io_t *io = ctx;
    assert(io != NULL);
    if (io->state != RT__RUNNING) return IO_ECANCELED;
    int32_t i = rt__timer_find(io, token);
    if (i < 0) {
        if (io->timers_count >= RT_TIMERS_MAX) return IO_ENOMEM;
        i = (int32_t)io->timers_count++;
        io->timers[i].token = token;
    }
    io->timers[i].deadline_ns = deadline_ns;
    io->timers[i].seq = io->timer_seq++;
    rt__timer_rearm(io);
    return 0;
}

static int rt__timer_cancel(void *ctx, uint64_t token) {
    rt_io_t *io = ctx;
    assert(io != NULL);
    if (io->state != RT__RUNNING) return 0;
    int32_t i = rt__timer_find(io, token);
    if (i >= 0) {
        rt__timer_remove(io, (uint32_t)i);
        rt__timer_rearm(io);
    }
    return 0;
}

/* ---- send: self loopback, peers, clients ------------------------------- */

static void rt__self_free_all(rt_io_t *io) {
    rt__self_msg_t *m = io->self_head;
    while (m != NULL) { /* bounded: self_bytes caps the list */
        rt__self_msg_t *next = m->next;
        free(m);
        m = next;
    }
    io->self_head = io->self_tail = NULL;
    io->self_bytes = 0;
}

static void rt__self_cb(uv_timer_t *handle) {
    rt_io_t *io = handle->data;
    assert(io != NULL && io->self_timer_open);
    /* Deliver what was queued before this turn; later sends wait. */
    rt__self_msg_t *m = io->self_head;
    io->self_head = io->self_tail = NULL;
    io->self_bytes = 0;
    while (m != NULL) {
        rt__self_msg_t *next = m->next;
        if (rt__node_live(io)) {
            io->stats.frames_received++;
            rt__dispatch_begin(io);
            io->program->handler->on_message(io->node, io->node_id, m->bytes,
                                             m->len);
            rt__dispatch_end(io);
        }
        free(m);
        m = next;
    }
}

static int rt__self_send(rt_io_t *io, const uint8_t *bytes, size_t len) {
    assert(io->self_timer_open);
    if (io->self_bytes + len > RT_PEER_QUEUE_BYTES_MAX) {
        io->stats.frames_dropped_overflow++;
        return IO_ENOMEM;
    }
    rt__self_msg_t *m = malloc(sizeof(*m) + len);
    if (m == NULL) return IO_ENOMEM;
    m->next = NULL;
    m->len = len;
    if (len > 0) memcpy(m->bytes, bytes, len);
    if (io->self_tail != NULL) io->self_tail->next = m;
    else io->self_head = m;
    io->self_tail = m;
    io->self_bytes += len;
    io->stats.frames_sent++;
    /* A zero delay fires on the next loop turn, never inside this call. */
    if (!uv_is_active((uv_handle_t *)&io->self_timer)) {
        uv_timer_start(&io->self_timer, rt__self_cb, 0, 0);
    }
    return 0;
}

static int rt__client_send(rt_io_t *io, io_addr_t dest, const uint8_t *bytes,
                           size_t len) {
    assert(dest >= IO_ADDR_CLIENT_BASE);
    if (dest >= io->client_next) return IO_EUNREACH;
    if (io->client_fn == NULL) return 0; /* no front end: a lost message */
    return io->client_fn(io->client_arg, dest, bytes, len);
}

static int rt__send(void *ctx, io_addr_t dest, const uint8_t *bytes,
                    size_t len) {
    rt_io_t *io = ctx;
    assert(io != NULL);
    if (bytes == NULL && len > 0) return IO_EINVAL;
    if (len > IO_MESSAGE_SIZE_MAX) return IO_EMSGSIZE;
    if (io->state != RT__RUNNING) return IO_ECANCELED;
    if (dest >= IO_ADDR_CLIENT_BASE) return rt__client_send(io, dest, bytes, len);
    if (dest >= io->peers_count) return IO_EUNREACH;
    if (dest == io->node_id) return rt__self_send(io, bytes, len);
    return rt__peers_send(io, dest, bytes, len);
}

/* ---- disk wrappers (the work is in files.c) ----------------------------- */

static int rt__disk_write(void *ctx, const char *name, uint64_t offset,
                          const uint8_t *bytes, size_t len, uint64_t token) {
    rt_io_t *io = ctx;
    if (bytes == NULL && len > 0) return IO_EINVAL;
    return rt__disk_submit(io, RT__DISK_WRITE, name, offset, NULL, bytes, len,
                           token);
}

static int rt__disk_read(void *ctx, const char *name, uint64_t offset,
                         uint8_t *buf, size_t len, uint64_t token) {
    rt_io_t *io = ctx;
    if (buf == NULL && len > 0) return IO_EINVAL;
    return rt__disk_submit(io, RT__DISK_READ, name, offset, buf, NULL, len,
                           token);
}

static int rt__disk_fsync(void *ctx, const char *name, uint64_t token) {
    return rt__disk_submit(ctx, RT__DISK_FSYNC, name, 0, NULL, NULL, 0, token);
}

static int rt__disk_truncate(void *ctx, const char *name, uint64_t size_bytes,
                             uint64_t token) {
    return rt__disk_submit(ctx, RT__DISK_TRUNCATE, name, size_bytes, NULL,
                           NULL, 0, token);
}

static int rt__disk_remove(void *ctx, const char *name, uint64_t token) {
    return rt__disk_submit(ctx, RT__DISK_REMOVE, name, 0, NULL, NULL, 0, token);
}

static void rt__trace(void *ctx, const io_trace_event_t *event) {
    rt_io_t *io = ctx;
    assert(io != NULL && event != NULL);
    rt_log_write(&io->log, RT_LOG_DEBUG, "trace %s %s",
                 event->name != NULL ? event->name : "?",
                 event->detail != NULL ? event->detail : "");
}

static const io_methods_t rt__methods = {
    .now_ns = rt__now_ns,               /* uv_hrtime(): monotonic */
    .random_u64 = rt__random_u64,       /* xoshiro256**, OS-seeded */
    .send = rt__send,                   /* peers.c / self / client hook */
    .timer_set = rt__timer_set,         /* token table + one uv_timer_t */
    .timer_cancel = rt__timer_cancel,
    .disk_write = rt__disk_write,       /* files.c: serial thread-pool queue */
    .disk_read = rt__disk_read,
    .disk_fsync = rt__disk_fsync,       /* fdatasync */
    .disk_truncate = rt__disk_truncate, /* ftruncate */
    .disk_remove = rt__disk_remove,     /* unlink + directory fsync */
    .disk_size = rt__disk_size,         /* stat, synchronous */
    .disk_list = rt__disk_list,         /* scandir, byte order, synchronous */
    .trace = rt__trace,                 /* debug-level log line */
};

/* ---- config ------------------------------------------------------------- */

int rt_parse_addr(const char *host_port, struct sockaddr_storage *out) {
    assert(out != NULL);
    if (host_port == NULL) return RT_EADDR;
    size_t total = strnlen(host_port, RT_HOST_MAX + 8);
    if (total == 0 || total > RT_HOST_MAX + 7) return RT_EADDR;
    const char *colon = strrchr(host_port, ':');
    if (colon == NULL || colon == host_port || colon[1] == '\0') return RT_EADDR;
    char host[RT_HOST_MAX + 1];
    size_t host_len = (size_t)(colon - host_port);
    int ipv6 = host_port[0] == '[';
    if (ipv6) {
        if (host_len < 3 || colon[-1] != ']') return RT_EADDR;
        host_len -= 2;
        memcpy(host, host_port + 1, host_len);
    } else {
        if (host_len > RT_HOST_MAX) return RT_EADDR;
        memcpy(host, host_port, host_len);
    }
    host[host_len] = '\0';
    unsigned long port = 0;
    for (const char *p = colon + 1; *p != '\0'; p++) { /* <= 7 chars */
        if (*p < '0' || *p > '9' || port > 65535) return RT_EADDR;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535) return RT_EADDR;
    memset(out, 0, sizeof(*out));
    if (ipv6) {
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0
                   ? 0 : RT_EADDR;
    }
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0
               ? 0 : RT_EADDR;
}

static int rt__config_check(const rt_config_t *cfg) {
    assert(cfg != NULL);
    if (cfg->peers_count == 0 || cfg->peers_count > RT_PEERS_MAX) return IO_EINVAL;
    if (cfg->peers == NULL || cfg->node_id >= cfg->peers_count) return IO_EINVAL;
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0' ||
        strlen(cfg->data_dir) > RT_PATH_MAX) {
        return IO_EINVAL;
    }
    if (cfg->listen_host != NULL && strlen(cfg->listen_host) > RT_HOST_MAX) {
        return IO_EINVAL;
    }
    if ((int)cfg->log_level < RT_LOG_ERROR || cfg->log_level > RT_LOG_DEBUG) {
        return IO_EINVAL;
    }
    uint32_t lo = cfg->backoff_min_ms ? cfg->backoff_min_ms : RT_BACKOFF_MIN_MS;
    uint32_t hi = cfg->backoff_max_ms ? cfg->backoff_max_ms : RT_BACKOFF_MAX_MS;
    if (lo > hi) return IO_EINVAL;
    return 0;
}

int rt_io_new(uv_loop_t *loop, const rt_config_t *cfg, rt_io_t **out) {
    if (loop == NULL || cfg == NULL || out == NULL) return IO_EINVAL;
    int rc = rt__config_check(cfg);
    if (rc != 0) return rc;
    rt_io_t *io = calloc(1, sizeof(*io));
    if (io == NULL) return IO_ENOMEM;
    io->timers = calloc(RT_TIMERS_MAX, sizeof(*io->timers));
    if (io->timers == NULL) {
        free(io);
        return IO_ENOMEM;
    }
    io->loop = loop;
    io->node_id = cfg->node_id;
    io->peers_count = cfg->peers_count;
    for (uint32_t i = 0; i < cfg->peers_count; i++) {
        io->peers[i].io = io;
        io->peers[i].id = i;
        rc = rt_parse_addr(cfg->peers[i], &io->peers[i].addr);
        if (rc != 0) {
            free(io->timers);
            free(io);
            return rc;
        }
    }
    snprintf(io->listen_host, sizeof(io->listen_host), "%s",
             cfg->listen_host != NULL ? cfg->listen_host : "127.0.0.1");
    snprintf(io->data_dir, sizeof(io->data_dir), "%s", cfg->data_dir);
    io->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : RT_BACKOFF_MIN_MS;
    io->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : RT_BACKOFF_MAX_MS;
    char tag[RT_LOG_TAG_MAX + 1];
    snprintf(tag, sizeof(tag), "node %" PRIu32, cfg->node_id);
    rt_log_init(&io->log, cfg->log_level, cfg->log_out, tag);
    rt__rng_seed(io, cfg->seed != 0 ? cfg->seed : rt__os_seed(io));
    io->io.methods = &rt__methods;
    io->io.ctx = io;
    io->io.self = cfg->node_id;
    io->client_next = IO_ADDR_CLIENT_BASE;
    io->dir_fd = -1;
    for (uint32_t i = 0; i < RT_FD_CACHE_MAX; i++) io->fds[i].fd = -1;
    *out = io;
    return 0;
}

/* ---- start / stop ------------------------------------------------------- */

static void rt__timers_start(rt_io_t *io) {
    assert(!io->timer_open && !io->self_timer_open);
    uv_timer_init(io->loop, &io->timer);
    io->timer.data = io;
    io->timer_open = 1;
    io->pending++;
    uv_timer_init(io->loop, &io->self_timer);
    io->self_timer.data = io;
    io->self_timer_open = 1;
    io->pending++;
}

int rt_io_start(rt_io_t *io, const io_program_t *program, void *arg) {
    if (io == NULL || program == NULL || program->boot == NULL ||
        program->halt == NULL || program->handler == NULL) {
        return IO_EINVAL;
    }
    if (io->state != RT__NEW) return RT_ESTATE;
    io->program = program;
    io->program_arg = arg;
    io->state = RT__RUNNING;
    rt__timers_start(io);
    int rc = rt__disk_start(io);
    if (rc == 0) rc = rt__peers_start(io);
    if (rc != 0) {
        rt_log_write(&io->log, RT_LOG_ERROR, "start failed: %s", rt_strerror(rc));
        rt__do_stop(io);
        return rc;
    }
    void *node = program->boot(arg, &io->io);
    if (node == NULL) {
        rt_log_write(&io->log, RT_LOG_ERROR, "program %s failed to boot",
                     program->name != NULL ? program->name : "?");
        rt__do_stop(io);
        return RT_EBOOT;
    }
    io->node = node;
    rt_log_write(&io->log, RT_LOG_INFO, "started %s on port %d",
                 program->name != NULL ? program->name : "?", io->listen_port);
    return 0;
}

static void rt__do_stop(rt_io_t *io) {
    assert(io != NULL);
    assert(io->dispatch_depth == 0);
    if (io->state != RT__RUNNING) return;
    io->stop_requested = 0;
    void *node = io->node;
    io->node = NULL;
    if (node != NULL) io->program->halt(node, 1);
    /* After halt nothing reaches the node: state gates every delivery. */
    io->state = RT__STOPPED;
    io->timers_count = 0;
    rt__close_handle(io, (uv_handle_t *)&io->timer, &io->timer_open);
    rt__self_free_all(io);
    rt__close_handle(io, (uv_handle_t *)&io->self_timer, &io->self_timer_open);
    rt__peers_stop(io);
    rt__disk_stop(io);
    rt_log_write(&io->log, RT_LOG_INFO, "stopped");
}

void rt_io_stop(rt_io_t *io) {
    if (io == NULL) return;
    if (io->state == RT__NEW) {
        io->state = RT__STOPPED;
        return;
    }
    if (io->dispatch_depth > 0) {
        io->stop_requested = 1; /* finish the running handler first */
        return;
    }
    rt__do_stop(io);
}

int rt_io_running(const rt_io_t *io) {
    assert(io != NULL);
    return io->state == RT__RUNNING;
}

void rt_io_free(rt_io_t *io) {
    if (io == NULL) return;
    assert(io->dispatch_depth == 0); /* never free from inside a handler */
    rt_io_stop(io);
    assert(io->state == RT__STOPPED);
    io->free_requested = 1;
    if (io->pending == 0) rt__io_release(io);
}

const io_t *rt_io_io(const rt_io_t *io) {
    assert(io != NULL);
    return &io->io;
}

void *rt_io_node(const rt_io_t *io) {
    assert(io != NULL);
    return io->node;
}

int rt_io_listen_port(const rt_io_t *io) {
    assert(io != NULL);
    return io->listen_port;
}

int rt_io_peer_connected(const rt_io_t *io, uint32_t peer) {
    assert(io != NULL);
    if (peer >= io->peers_count || peer == io->node_id) return 0;
    return io->peers[peer].connected;
}

void rt_io_stats(const rt_io_t *io, rt_stats_t *out) {
    assert(io != NULL && out != NULL);
    *out = io->stats;
}

rt_log_t *rt_io_log(rt_io_t *io) {
    assert(io != NULL);
    return &io->log;
}

/* ---- clients ------------------------------------------------------------ */

void rt_io_set_client_hook(rt_io_t *io, rt_client_send_fn fn, void *arg) {
    assert(io != NULL);
    io->client_fn = fn;
    io->client_arg = fn != NULL ? arg : NULL;
}

int rt_io_client_open(rt_io_t *io, io_addr_t *addr) {
    assert(io != NULL && addr != NULL);
    assert(io->client_next >= IO_ADDR_CLIENT_BASE);
    if (io->client_next == UINT32_MAX) return IO_ENOMEM;
    *addr = io->client_next++;
    return 0;
}

int rt_io_client_deliver(rt_io_t *io, io_addr_t from, const uint8_t *bytes,
                         size_t len) {
    assert(io != NULL);
    if (bytes == NULL && len > 0) return IO_EINVAL;
    if (from < IO_ADDR_CLIENT_BASE || from >= io->client_next) return IO_EUNREACH;
    if (len > IO_MESSAGE_SIZE_MAX) return IO_EMSGSIZE;
    if (!rt__node_live(io) || io->dispatch_depth > 0) return IO_ECANCELED;
    static const uint8_t empty[1] = {0};
    rt__dispatch_begin(io);
    io->program->handler->on_message(io->node, from, len > 0 ? bytes : empty, len);
    rt__dispatch_end(io);
    return 0;
}

/* ---- signals ------------------------------------------------------------ */

static void rt__signal_cb(uv_signal_t *handle, int signum) {
    rt_signals_t *s = handle->data;
    assert(s != NULL && s->active);
    s->signum = signum;
    if (s->io != NULL) {
        rt_log_write(&s->io->log, RT_LOG_INFO, "signal %d: stopping", signum);
        rt_io_stop(s->io);
    }
    if (s->fn != NULL) s->fn(s->arg, signum);
    rt_signals_close(s);
}

void rt_ignore_sigpipe(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    (void)sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGPIPE, &sa, NULL);
}

void rt_trim_memory(void) {
#ifdef __GLIBC__
    (void)malloc_trim(0);
#endif
}

int rt_signals_start(rt_signals_t *s, uv_loop_t *loop, rt_io_t *io,
                     rt_signal_fn fn, void *arg) {
    if (s == NULL || loop == NULL) return IO_EINVAL;
    memset(s, 0, sizeof(*s));
    s->io = io;
    s->fn = fn;
    s->arg = arg;
    if (uv_signal_init(loop, &s->sigint) != 0) return IO_EINVAL;
    if (uv_signal_init(loop, &s->sigterm) != 0) {
        uv_close((uv_handle_t *)&s->sigint, NULL);
        return IO_EINVAL;
    }
    s->sigint.data = s;
    s->sigterm.data = s;
    s->active = 1;
    if (uv_signal_start(&s->sigint, rt__signal_cb, SIGINT) != 0 ||
        uv_signal_start(&s->sigterm, rt__signal_cb, SIGTERM) != 0) {
        rt_signals_close(s);
        return IO_EINVAL;
    }
    return 0;
}

void rt_signals_close(rt_signals_t *s) {
    assert(s != NULL);
    if (!s->active) return;
    s->active = 0;
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

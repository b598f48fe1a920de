/*
 * tests/support/tnet.c — see tnet.h. POSIX + cmocka + broker/wire.h only:
 * this file is linked into every test program.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/wire.h"
#include "tests/support/tnet.h"

uint64_t tnet_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tnet_sleep_ms(uint32_t ms) {
    const struct timespec d = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    nanosleep(&d, NULL);
}

/* ---- ports ---------------------------------------------------------------- */

static struct sockaddr_in tnet__loopback(int port) {
    assert(port >= 0 && port <= 65535);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    return a;
}

int tnet_port_free(int port) {
    assert(port > 0 && port <= 65535);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    const int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = tnet__loopback(port);
    const int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

int tnet_free_ports(int count, unsigned salt) {
    assert(count > 0 && count < 1000);
    const unsigned span = TNET_PORT_HI - TNET_PORT_LO - 10000u;
    int base = TNET_PORT_LO + (int)((unsigned)getpid() * salt % span);
    for (int attempt = 0; attempt < TNET_PORT_TRIES_MAX; attempt++, base += count) {
        if (base + count > TNET_PORT_HI) base = TNET_PORT_LO;
        int ok = 1;
        for (int i = 0; i < count && ok; i++) ok = tnet_port_free(base + i);
        if (ok) return base;
    }
    fail_msg("no %d free consecutive ports", count);
    return -1;
}

void tnet_kernel_ports(uint16_t *ports, unsigned count) {
    assert(ports != NULL);
    assert_true(count <= TNET_KERNEL_PORTS_MAX);
    int fds[TNET_KERNEL_PORTS_MAX];
    for (unsigned i = 0; i < count; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        struct sockaddr_in a = tnet__loopback(0);
        assert_int_equal(bind(fds[i], (struct sockaddr *)&a, sizeof a), 0);
        socklen_t len = sizeof a;
        assert_int_equal(getsockname(fds[i], (struct sockaddr *)&a, &len), 0);
        ports[i] = ntohs(a.sin_port);
    }
    for (unsigned i = 0; i < count; i++) close(fds[i]);
}

int tnet_connect(int port) {
    assert(port > 0 && port <= 65535);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = tnet__loopback(port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read frames from fd until one decodes (bounded by the probe timeout):
 * 1 HEARTBEAT, 0 NOT_LEADER, -1 anything else or nothing. */
static int tnet__read_role(int fd, uint8_t *buf, size_t cap) {
    assert(fd >= 0 && cap > 0);
    size_t have = 0;
    const uint64_t end = tnet_now_ms() + TNET_PROBE_TIMEOUT_MS;
    while (have < cap && tnet_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        const ssize_t r = recv(fd, buf + have, cap - have, 0);
        if (r <= 0) return -1;
        have += (size_t)r;
        const int size = wire_frame_size(buf, have);
        if (size <= 0 || (size_t)size > have) continue;
        wire_msg_t m;
        if (wire_decode(buf, (size_t)size, &m, NULL, 0) != 0) return -1;
        if (m.type == WIRE_MSG_HEARTBEAT) return 1;
        return m.type == WIRE_MSG_NOT_LEADER ? 0 : -1;
    }
    return -1;
}

int tnet_wire_role(int port) { return tnet_wire_role_token(port, NULL); }

int tnet_wire_role_token(int port, const char *token) {
    assert(port > 0);
    const int fd = tnet_connect(port);
    if (fd < 0) return -1;
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_HEARTBEAT;
    uint8_t buf[512];
    size_t off = 0;
    if (token != NULL) { /* the client port's preamble: "CHLA", u32 LE length, token */
        const size_t tlen = strlen(token);
        assert_true(tlen < 256);
        memcpy(buf, "CHLA", 4);
        for (uint32_t i = 0; i < 4; i++) buf[4 + i] = (uint8_t)(tlen >> (8 * i));
        memcpy(buf + 8, token, tlen);
        off = 8 + tlen;
    }
    const int len = wire_encode(&m, buf + off, sizeof buf - off);
    assert_true(len > 0);
    int role = -1;
    if (send(fd, buf, off + (size_t)len, MSG_NOSIGNAL) == (ssize_t)(off + (size_t)len))
        role = tnet__read_role(fd, buf, sizeof buf);
    close(fd);
    return role;
}

/* ---- files ---------------------------------------------------------------- */

static void tnet__rm_tree(const char *dir, int depth) {
    assert(dir != NULL && depth >= 0);
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        for (int i = 0; i < TNET_RM_ENTRIES_MAX && (e = readdir(d)) != NULL; i++) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char path[TNET_PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            struct stat st;
            if (depth < TNET_RM_DEPTH_MAX && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                tnet__rm_tree(path, depth + 1);
            else
                (void)unlink(path);
        }
        closedir(d);
    }
    (void)rmdir(dir);
}

void tnet_rm_tree(const char *dir) {
    assert(dir != NULL);
    if (dir[0] == '\0') return; /* a fixture that never made its dir */
    tnet__rm_tree(dir, 0);
}

size_t tnet_read_file(const char *path, char *buf, size_t cap) {
    assert(path != NULL && buf != NULL);
    assert(cap >= 1);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    const size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

/* ---- child processes ------------------------------------------------------ */

pid_t tnet_spawn(const char *const *argv, const char *out_path) {
    assert(argv != NULL && argv[0] != NULL);
    assert(out_path != NULL);
    fflush(NULL); /* the child must not write our buffered output again */
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int null_fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (null_fd >= 0) {
            dup2(null_fd, 0);
            close(null_fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int tnet_wait(pid_t pid, uint32_t timeout_ms) {
    assert(pid > 0);
    const uint64_t end = tnet_now_ms() + timeout_ms;
    int status = 0;
    for (;;) { /* bounded by `end` */
        const pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
        if (r < 0 || tnet_now_ms() >= end) break;
        tnet_sleep_ms(TNET_WAIT_POLL_MS);
    }
    kill(pid, SIGKILL);
    (void)waitpid(pid, &status, 0);
    return -1;
}

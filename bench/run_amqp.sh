#!/usr/bin/env bash
# bench/run_amqp.sh — chaoslab's reference broker against RabbitMQ on this
# machine, through the same AMQP 0-9-1 client (bench/amqp_load, librabbitmq).
#
# Phases, one after the other, same load (N persistent messages, publisher
# confirms with a window, then a manual-ack consumer):
#   1. chaoslab, one node      (--fsync always --acks quorum)
#   2. chaoslab, 3-node cluster (`chaoslab cluster --nodes 3`, AMQP port of node 0)
#   3. RabbitMQ, one node, a quorum queue
# Each system gets one unreported warm-up run, then --repeat measured runs
# (medians shown). Prints a table and the chaoslab/RabbitMQ ratios of
# publish-confirm throughput.
#
# Builds what it needs (Release) in --build-dir, installs rabbitmq-server
# with apt-get when missing (root only; otherwise phase 3 is skipped), and
# starts and stops every broker itself on free loopback ports with data in a
# temporary directory. Exit 0 when every run confirmed and consumed every
# message, 1 otherwise, 2 on bad usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
MESSAGES=50000
SIZE=256
WINDOW=128
PREFETCH=256
TIMEOUT_S=60
PHASES="single,cluster,rabbitmq"
KEEP=0
REPEAT=3
START_TIMEOUT_S=60

usage() {
    cat <<EOF
usage: bench/run_amqp.sh [--build-dir DIR] [--messages N] [--size BYTES]
                         [--window W] [--prefetch P] [--phases LIST]
                         [--repeat R] [--keep]
  --build-dir DIR  build tree (default \$BUILD_DIR or $ROOT/build-bench),
                   configured as Release if it does not exist yet
  --messages N     messages per run (default $MESSAGES)
  --size BYTES     body size (default $SIZE)
  --window W       unconfirmed publishes allowed (default $WINDOW)
  --prefetch P     consumer prefetch (default $PREFETCH)
  --phases LIST    comma list of single,cluster,rabbitmq (default all)
  --repeat R       measured runs per system, the table shows medians (default $REPEAT)
  --keep           keep the temporary data and logs (path printed)
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --build-dir) BUILD_DIR=$2; shift 2 ;;
        --messages) MESSAGES=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --window) WINDOW=$2; shift 2 ;;
        --prefetch) PREFETCH=$2; shift 2 ;;
        --phases) PHASES=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run_amqp.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
for v in "$MESSAGES" "$SIZE" "$WINDOW" "$PREFETCH" "$REPEAT"; do
    case "$v" in ''|*[!0-9]*) echo "run_amqp.sh: '$v' is not a number" >&2; exit 2 ;; esac
done

log() { printf '[run_amqp] %s\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/chaoslab-bench-amqp-XXXXXX)
PIDS=()          # background processes we started (each its own session)
RMQ_ENV=()
RMQ_CTL=""       # rabbitmqctl command line once RabbitMQ runs
EPMD_PORT=""

# ---------------------------------------------------------------- cleanup
stop_pid() { # pid: SIGTERM, up to 15 s, then SIGKILL (its process group)
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop: SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_rabbitmq() {
    if [ -n "$RMQ_CTL" ]; then
        timeout 60 env "${RMQ_ENV[@]}" $RMQ_CTL stop >/dev/null 2>&1 || true
        RMQ_CTL=""
    fi
}

# The epmd our Erlang node spawned on its own port: it refuses to die while
# a node is still registered, so this runs after the node's process exited.
kill_epmd() {
    local i
    [ -n "$EPMD_PORT" ] || return 0
    for i in $(seq 1 20); do
        port_listening "$EPMD_PORT" || break
        timeout 10 epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
        sleep 0.25
    done
    port_listening "$EPMD_PORT" && log "epmd on port $EPMD_PORT is still running"
    EPMD_PORT=""
}

cleanup() {
    local pid
    stop_rabbitmq
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
    kill_epmd
    if [ "$KEEP" = 1 ]; then log "data and logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- helpers
port_busy() { ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .; }
port_listening() { ss -Htln "( sport = :$1 )" 2>/dev/null | grep -q .; }

# free_base COUNT: a base port whose COUNT consecutive ports are all free.
free_base() {
    local count=$1 try base p ok
    for try in $(seq 1 200); do
        base=$(( 20000 + (RANDOM * 32768 + RANDOM) % 30000 ))
        ok=1
        for p in $(seq "$base" $(( base + count - 1 ))); do
            if port_busy "$p"; then ok=0; break; fi
        done
        if [ "$ok" = 1 ]; then echo "$base"; return 0; fi
    done
    echo "run_amqp.sh: no free port range found" >&2
    return 1
}

# wait_port PORT PID SECONDS: until PORT accepts connections (0), PID died or
# time ran out (1).
wait_port() {
    local port=$1 pid=$2 limit=$3 i
    for i in $(seq 1 $(( limit * 10 ))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

build() {
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
        log "configuring $BUILD_DIR (Release)"
        cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCHAOSLAB_TESTS=OFF >&2
    fi
    log "building chaoslab and amqp_load in $BUILD_DIR"
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target chaoslab amqp_load >&2
    CHAOSLAB=$BUILD_DIR/chaoslab
    LOAD=$BUILD_DIR/bench/amqp_load
    [ -x "$CHAOSLAB" ] || { echo "run_amqp.sh: $CHAOSLAB not built" >&2; exit 1; }
    [ -x "$LOAD" ] || { echo "run_amqp.sh: $LOAD not built (librabbitmq-dev missing?)" >&2; exit 1; }
}

declare -A PUB CON STATUS ALLPUB ALLCON

median() { # values... -> the median (the lower middle one for an even count)
    printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# run_load NAME PORT [amqp_load flags...]: a warm-up, then REPEAT measured
# runs; the table shows the median of each rate.
run_load() {
    local name=$1 port=$2 out rc=0 r pubs=() cons=()
    shift 2
    local warm=$(( MESSAGES / 10 ))
    [ "$warm" -ge 1000 ] || warm=1000
    log "$name: warm-up ($warm messages)"
    "$LOAD" --host 127.0.0.1 --port "$port" --queue "bench-warmup" --messages "$warm" \
        --size "$SIZE" --window "$WINDOW" --prefetch "$PREFETCH" --timeout-s "$TIMEOUT_S" "$@" \
        > "$WORK/$name.warmup.out" 2>&1 || log "$name: warm-up failed"
    for r in $(seq 1 "$REPEAT"); do
        log "$name: run $r/$REPEAT, $MESSAGES messages of $SIZE bytes, window $WINDOW"
        out="$WORK/$name.$r.out"
        "$LOAD" --host 127.0.0.1 --port "$port" --queue "bench-load" --messages "$MESSAGES" \
            --size "$SIZE" --window "$WINDOW" --prefetch "$PREFETCH" --timeout-s "$TIMEOUT_S" "$@" \
            > "$out" 2>&1 || rc=$?
        sed 's/^/    /' "$out" >&2
        pubs+=("$(sed -n 's/^publish_msgs_per_sec=//p' "$out")")
        cons+=("$(sed -n 's/^consume_msgs_per_sec=//p' "$out")")
    done
    PUB[$name]=$(median "${pubs[@]}")
    CON[$name]=$(median "${cons[@]}")
    ALLPUB[$name]="${pubs[*]}"
    ALLCON[$name]="${cons[*]}"
    if [ "$rc" = 0 ]; then STATUS[$name]=ok; else STATUS[$name]="FAILED(rc=$rc)"; fi
}

want() { case ",$PHASES," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

STRATEGY=(--fsync always --acks quorum)
CLUSTER_LEADER="?"

# ---------------------------------------------------------------- chaoslab
phase_single() {
    local base pid
    base=$(free_base 3)
    mkdir -p "$WORK/single"
    setsid "$CHAOSLAB" broker --id 0 --peers "127.0.0.1:$base" \
        --client "127.0.0.1:$(( base + 1 ))" --amqp "127.0.0.1:$(( base + 2 ))" \
        --data-dir "$WORK/single/data" "${STRATEGY[@]}" --log-level warn > "$WORK/single/broker.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! wait_port $(( base + 2 )) "$pid" "$START_TIMEOUT_S"; then
        log "chaoslab broker did not listen on AMQP port $(( base + 2 ))"
        tail -20 "$WORK/single/broker.log" >&2
        STATUS[chaoslab-1]="FAILED(start)"
        return
    fi
    run_load chaoslab-1 $(( base + 2 ))
    stop_pid "$pid"
}

phase_cluster() {
    local base pid
    base=$(free_base 9)
    mkdir -p "$WORK/cluster"
    # info: the log says which node leads (the client talks to node 0).
    setsid "$CHAOSLAB" cluster --nodes 3 --base-port "$base" --data-dir "$WORK/cluster/data" \
        "${STRATEGY[@]}" --log-level info > "$WORK/cluster/cluster.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    local p
    for p in $(( base + 2 )) $(( base + 5 )) $(( base + 8 )); do
        if ! wait_port "$p" "$pid" "$START_TIMEOUT_S"; then
            log "chaoslab cluster did not listen on AMQP port $p"
            tail -20 "$WORK/cluster/cluster.log" >&2
            STATUS[chaoslab-3]="FAILED(start)"
            return
        fi
    done
    run_load chaoslab-3 $(( base + 2 ))
    CLUSTER_LEADER=$(sed -n 's/^chaoslab\[node \([0-9]*\)\].*this node is the leader.*/\1/p' \
        "$WORK/cluster/cluster.log" | tail -1)
    stop_pid "$pid"
}

# ---------------------------------------------------------------- RabbitMQ
find_rabbitmq() {
    RMQ_SBIN=$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin 2>/dev/null | sort -V | tail -1)
    [ -n "$RMQ_SBIN" ] && [ -x "$RMQ_SBIN/rabbitmq-server" ]
}

install_rabbitmq() {
    find_rabbitmq && return 0
    if [ "$(id -u)" != 0 ]; then
        log "rabbitmq-server is not installed and we are not root: skipping RabbitMQ"
        return 1
    fi
    log "installing rabbitmq-server with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends rabbitmq-server >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends rabbitmq-server >&2; } ||
        return 1
    # The package may start its own service; ours runs on other ports, in WORK.
    find_rabbitmq
}

phase_rabbitmq() {
    if ! install_rabbitmq; then STATUS[rabbitmq-quorum]="SKIPPED"; return; fi
    local base dir=$WORK/rabbitmq pid
    base=$(free_base 3)
    mkdir -p "$dir/mnesia" "$dir/log"
    echo '[].' > "$dir/enabled_plugins"
    EPMD_PORT=$(( base + 2 ))
    local node="chaoslab-bench-$$@localhost"
    # The scripts in sbin/ run as the calling user (the /usr/sbin wrappers
    # would switch to the rabbitmq user and its /var/lib files).
    RMQ_ENV=(HOME="$dir" RABBITMQ_BASE="$dir" RABBITMQ_MNESIA_BASE="$dir/mnesia"
             RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_NODENAME="$node"
             RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$base"
             RABBITMQ_DIST_PORT=$(( base + 1 )) ERL_EPMD_PORT="$EPMD_PORT"
             RABBITMQ_CONFIG_FILE="$dir/none" RABBITMQ_ADVANCED_CONFIG_FILE="$dir/none-advanced.config"
             RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_PID_FILE="$dir/pid")
    log "starting RabbitMQ ($RMQ_SBIN) as $node on port $base"
    setsid env "${RMQ_ENV[@]}" "$RMQ_SBIN/rabbitmq-server" > "$dir/server.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    RMQ_CTL="$RMQ_SBIN/rabbitmqctl -n $node"
    if ! wait_port "$base" "$pid" "$START_TIMEOUT_S"; then
        log "RabbitMQ did not listen on $base"
        tail -30 "$dir/server.out" >&2
        STATUS[rabbitmq-quorum]="FAILED(start)"
        return
    fi
    RMQ_VERSION=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo "?")
    run_load rabbitmq-quorum "$base" --quorum
    stop_rabbitmq
    stop_pid "$pid"
    kill_epmd
}

# ---------------------------------------------------------------- report
ratio() { # a b -> a/b with 2 decimals, or n/a
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

report() {
    local name
    echo
    echo "load average before the report: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
    echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(uname -sr)"
    echo "load: $MESSAGES persistent messages x $SIZE bytes, confirm window $WINDOW, prefetch $PREFETCH, one connection"
    [ -n "${RMQ_VERSION:-}" ] && echo "rabbitmq-server $RMQ_VERSION, quorum queue, one node"
    echo "chaoslab: --fsync always --acks quorum; 3 nodes = chaoslab cluster, client on node 0 (leader: node ${CLUSTER_LEADER:-?})"
    echo
    echo "medians of $REPEAT runs (each run: [publish consume])"
    printf '%-16s %21s %21s  %-8s %s\n' system publish_msgs_per_sec consume_msgs_per_sec status runs
    for name in chaoslab-1 chaoslab-3 rabbitmq-quorum; do
        [ -n "${STATUS[$name]:-}" ] || continue
        printf '%-16s %21s %21s  %-8s %s | %s\n' "$name" "${PUB[$name]:--}" "${CON[$name]:--}" \
            "${STATUS[$name]}" "${ALLPUB[$name]:-}" "${ALLCON[$name]:-}"
    done
    echo
    local r1 r3
    r1=$(ratio "${PUB[chaoslab-1]:-}" "${PUB[rabbitmq-quorum]:-}")
    r3=$(ratio "${PUB[chaoslab-3]:-}" "${PUB[rabbitmq-quorum]:-}")
    echo "publish-confirm ratio chaoslab-1/rabbitmq = $r1   (target >= 2.00)"
    echo "publish-confirm ratio chaoslab-3/rabbitmq = $r3   (target > 1.00)"
    echo "consume ratio chaoslab-1/rabbitmq = $(ratio "${CON[chaoslab-1]:-}" "${CON[rabbitmq-quorum]:-}")"
    echo "consume ratio chaoslab-3/rabbitmq = $(ratio "${CON[chaoslab-3]:-}" "${CON[rabbitmq-quorum]:-}")"
}

build
want single && phase_single
want cluster && phase_cluster
want rabbitmq && phase_rabbitmq
report

for name in "${!STATUS[@]}"; do
    case "${STATUS[$name]}" in ok|SKIPPED) ;; *) exit 1 ;; esac
done
exit 0

#!/usr/bin/env bash
# A three-node RabbitMQ cluster on loopback, beside the machine's own RabbitMQ (`just cluster`):
#   a  amqpc-a@localhost  AMQP 127.0.0.1:5701  distribution 25701
#   b  amqpc-b@localhost  AMQP 127.0.0.1:5702  distribution 25702
#   c  amqpc-c@localhost  AMQP 127.0.0.1:5703  distribution 25703
# guest/guest on `/`, from Debian's RabbitMQ (the package the machine's own broker runs; installed
# if missing). Each node has its own configuration, data (mnesia), logs and enabled-plugins file
# (none) under ${CARGO_TARGET_DIR:-target}/cluster/<node>/, and the three share an Erlang cookie
# of their own (target/cluster/home/.erlang.cookie): nothing of /etc/rabbitmq or
# /var/lib/rabbitmq is read or written, and the machine's own node (rabbit@localhost, 5672) is
# never addressed. They share its epmd (127.0.0.1:4369); one the cluster had to start is stopped
# with it.
#
#   brokers/cluster.sh [up]        start the nodes that are not answering and join b and c to a;
#                                  a cluster already up is left alone (idempotent)
#   brokers/cluster.sh stop        stop every node (rabbitmqctl stop, then SIGKILL after 30 s) and
#                                  check that no process of theirs is left
#   brokers/cluster.sh status      each node: answering AMQP or not, and the cluster's view
#   brokers/cluster.sh stop-node N      stop node N's RabbitMQ application (its VM stays up)
#   brokers/cluster.sh start-node N     start it again (or the whole node, if it was killed)
#   brokers/cluster.sh kill-node N      SIGKILL node N's VM (a crash)
# N is a, b or c. Exits non-zero, saying why, when what was asked is not so at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
base="$(pwd)/${CARGO_TARGET_DIR:-target}/cluster"
home="$base/home"
bin=/usr/lib/rabbitmq/bin
nodes=(a b c)

say() { echo "cluster: $*"; }
port() { case $1 in a) echo 5701 ;; b) echo 5702 ;; c) echo 5703 ;; *) say "no node $1 (a, b or c)"; exit 2 ;; esac; }
nodename() { echo "amqpc-$1@localhost"; }

# Whether an AMQP 0-9-1 server answers the protocol header at 127.0.0.1:$1 with connection.start.
answers_amqp() {
    local reply
    reply=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'AMQP\x00\x00\x09\x01' >&3 && head -c 1 <&3 | od -An -tx1" 2>/dev/null) || return 1
    [ "$(echo "$reply" | tr -d ' ')" = "01" ]
}

# The environment of node $1 (for the server and for rabbitmqctl alike).
node_env() {
    local n=$1 dir="$base/$1" p
    p=$(port "$n")
    echo HOME="$home" PATH="$PATH" LANG=C.UTF-8 \
        RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
        RABBITMQ_NODENAME="$(nodename "$n")" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$p" RABBITMQ_DIST_PORT="$((p + 20000))" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_PID_FILE="$dir/pid" \
        ERL_EPMD_ADDRESS=127.0.0.1 ERL_CRASH_DUMP="$dir/erl_crash.dump"
}

ctl() {
    local n=$1
    shift
    # shellcheck disable=SC2046
    env -i $(node_env "$n") "$bin/rabbitmqctl" -n "$(nodename "$n")" "$@"
}

prepare() {
    if [ ! -x "$bin/rabbitmq-server" ]; then
        say "installing rabbitmq-server (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null
    fi
    mkdir -p "$home"
    if [ ! -f "$home/.erlang.cookie" ]; then
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$home/.erlang.cookie"
    fi
    chmod 400 "$home/.erlang.cookie"
    for n in "${nodes[@]}"; do
        local dir="$base/$n"
        mkdir -p "$dir/mnesia" "$dir/log"
        printf 'listeners.tcp.local = 127.0.0.1:%s\nloopback_users.guest = true\n' "$(port "$n")" >"$dir/rabbitmq.conf"
        # The distribution listens on loopback only, as the machine's own node does.
        printf 'export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"\n' >"$dir/rabbitmq-env.conf"
        echo '[].' >"$dir/enabled_plugins"
    done
}

# Start node $1 unless it answers, without waiting: a node of a cluster that stopped waits for
# its peers' tables when it starts again, so every node is launched before any is waited for.
launch_node() {
    local n=$1 dir="$base/$1"
    if answers_amqp "$(port "$n")"; then
        return 0
    fi
    if ctl "$n" ping >/dev/null 2>&1; then
        # The VM is up: its application was stopped (stop-node), or it is still starting.
        ctl "$n" start_app >>"$base/ctl.log" 2>&1 &
    else
        say "$n: starting $(nodename "$n") on 127.0.0.1:$(port "$n") (log: $dir/server.log)"
        # shellcheck disable=SC2046
        env -i $(node_env "$n") setsid "$bin/rabbitmq-server" >"$dir/server.log" 2>&1 </dev/null &
    fi
}

# Wait (at most 120 s) until node $1 answers AMQP.
wait_node() {
    local n=$1 dir="$base/$1"
    for _ in $(seq 1 120); do
        answers_amqp "$(port "$n")" && return 0
        sleep 1
    done
    say "$n: not answering on 127.0.0.1:$(port "$n") after 120 s (see $dir/server.log and $dir/log/)"
    return 1
}

# The running nodes node $1 sees in its cluster.
running_nodes() {
    ctl "$1" cluster_status --formatter json 2>/dev/null |
        python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin).get("running_nodes", []))))' 2>/dev/null
}

joined() {
    [ "$(running_nodes a)" = "amqpc-a@localhost amqpc-b@localhost amqpc-c@localhost" ]
}

up() {
    prepare
    if joined && answers_amqp 5701 && answers_amqp 5702 && answers_amqp 5703; then
        say "already up: a 5701, b 5702, c 5703"
        return 0
    fi
    # The machine's own node normally runs epmd; if none does, the first node starts one, which
    # `stop` stops again once no other node is registered with it.
    if ! ERL_EPMD_ADDRESS=127.0.0.1 epmd -names >/dev/null 2>&1; then
        touch "$base/epmd-started"
    fi
    for n in "${nodes[@]}"; do launch_node "$n"; done
    for n in "${nodes[@]}"; do wait_node "$n"; done
    for n in b c; do
        if ! ctl a cluster_status --formatter json 2>/dev/null | grep -q "amqpc-$n@localhost"; then
            say "$n: joining a"
            {
                ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster "$(nodename a)" && ctl "$n" start_app
            } >>"$base/ctl.log" 2>&1 || say "$n: joining failed (see $base/ctl.log)"
        fi
    done
    for _ in $(seq 1 30); do
        if joined; then
            say "up: a 5701, b 5702, c 5703 (running: $(running_nodes a))"
            return 0
        fi
        sleep 1
    done
    say "the nodes did not form one cluster (a sees: $(running_nodes a))"
    return 1
}

# Processes of this cluster's nodes: their command lines name the cluster's own home directory.
leftovers() {
    pgrep -f -- "-home $home( |$)" || true
}

stop() {
    for n in "${nodes[@]}"; do
        if ctl "$n" ping >/dev/null 2>&1; then
            say "$n: stopping"
            timeout 30 "$0" _ctl "$n" stop >/dev/null 2>&1 || true
        fi
    done
    local left
    for _ in $(seq 1 30); do
        left=$(leftovers)
        [ -z "$left" ] && break
        sleep 1
    done
    if [ -n "$left" ]; then
        say "killing what is left: $(echo "$left" | tr '\n' ' ')"
        echo "$left" | xargs -r kill -9 || true
        sleep 1
    fi
    left=$(leftovers)
    if [ -n "$left" ]; then
        say "still running: $left"
        return 1
    fi
    if [ -f "$base/epmd-started" ] && ! ERL_EPMD_ADDRESS=127.0.0.1 epmd -names 2>/dev/null | grep -q "^name "; then
        ERL_EPMD_ADDRESS=127.0.0.1 epmd -kill >/dev/null 2>&1 || true
        rm -f "$base/epmd-started"
        say "stopped the epmd the cluster started"
    fi
    say "stopped: nothing of the cluster is running"
}

status() {
    for n in "${nodes[@]}"; do
        if answers_amqp "$(port "$n")"; then
            say "$n: answering on 127.0.0.1:$(port "$n")"
        else
            say "$n: not answering on 127.0.0.1:$(port "$n")"
        fi
    done
    say "a sees running: $(running_nodes a || true)"
}

kill_node() {
    local n=$1 pid
    pid=$(ctl "$n" eval 'os:getpid().' 2>/dev/null | tr -d '"' || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
        say "$n: not running"
        return 1
    fi
    say "$n: SIGKILL to $pid"
    kill -9 "$pid"
    for _ in $(seq 1 30); do
        answers_amqp "$(port "$n")" || return 0
        sleep 1
    done
    say "$n: still answering after SIGKILL"
    return 1
}

case "${1:-up}" in
up) up ;;
stop) stop ;;
status) status ;;
stop-node)
    port "${2:?which node}" >/dev/null
    ctl "$2" stop_app >>"$base/ctl.log" 2>&1 && say "$2: application stopped"
    ;;
start-node)
    port "${2:?which node}" >/dev/null
    prepare
    launch_node "$2"
    wait_node "$2" && say "$2: answering on 127.0.0.1:$(port "$2")"
    ;;
kill-node)
    port "${2:?which node}" >/dev/null
    kill_node "$2"
    ;;
_ctl)
    shift
    ctl "$@"
    ;;
*)
    say "unknown command $1 (up, stop, status, stop-node N, start-node N, kill-node N)"
    exit 2
    ;;
esac

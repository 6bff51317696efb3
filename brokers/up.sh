#!/usr/bin/env bash
# Make the brokers the suite runs against available (`just brokers`, called by ./check):
#   RabbitMQ on 127.0.0.1:5672 and GarageMQ on 127.0.0.1:5673, guest/guest, loopback only.
# Each is installed from Debian's packages if missing and started if not already answering;
# one that answers is left alone, so running this twice is harmless. Says what it did, or why
# it could not, and exits non-zero if a broker is not answering AMQP at the end.
#
#   brokers/up.sh                      both brokers
#   brokers/up.sh garagemq             one of them (rabbitmq, garagemq)
#   brokers/up.sh --restart garagemq   stop GarageMQ (the one this project started, from this
#                                      checkout or another) and start it again on the same data:
#                                      the restart command of the restart fixtures
set -euo pipefail
cd "$(dirname "$0")/.."
state="${CARGO_TARGET_DIR:-target}/brokers"

say() { echo "brokers: $*"; }

# Whether an AMQP 0-9-1 server answers the protocol header at 127.0.0.1:$1 with connection.start.
answers_amqp() {
    local port=$1 reply
    reply=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && printf 'AMQP\x00\x00\x09\x01' >&3 && head -c 1 <&3 | od -An -tx1" 2>/dev/null) || return 1
    [ "$(echo "$reply" | tr -d ' ')" = "01" ]
}

wait_for() {
    local name=$1 port=$2 seconds=$3
    for _ in $(seq 1 "$seconds"); do
        answers_amqp "$port" && return 0
        sleep 1
    done
    return 1
}

install_package() {
    local package=$1
    if ! dpkg -s "$package" >/dev/null 2>&1; then
        say "installing $package (Debian package)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            -o Dpkg::Options::=--force-confold "$package" >/dev/null; }; then
            say "could not install $package with apt-get (are you root, is the mirror reachable?)" >&2
            return 1
        fi
    fi
}

rabbitmq() {
    if answers_amqp 5672; then
        say "RabbitMQ: already answering on 127.0.0.1:5672, left as it is"
        return 0
    fi
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        # Loopback only: the listener, epmd and Erlang distribution, written before the package
        # so that it never listens elsewhere (existing files are kept).
        mkdir -p /etc/rabbitmq
        [ -e /etc/rabbitmq/rabbitmq.conf ] || echo "listeners.tcp.local = 127.0.0.1:5672" > /etc/rabbitmq/rabbitmq.conf
        [ -e /etc/rabbitmq/rabbitmq-env.conf ] || printf '%s\n' 'NODENAME=rabbit@localhost' \
            'ERL_EPMD_ADDRESS=127.0.0.1' 'export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"' \
            > /etc/rabbitmq/rabbitmq-env.conf
        install_package rabbitmq-server || return 1
    fi
    say "RabbitMQ: starting (rabbitmq-server -detached)"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    if ! wait_for RabbitMQ 5672 60; then
        say "RabbitMQ did not answer on 127.0.0.1:5672 within 60 s (see /var/log/rabbitmq/)" >&2
        return 1
    fi
    # The port answers before the broker accepts logins.
    for _ in $(seq 1 30); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
    say "RabbitMQ: answering on 127.0.0.1:5672"
}

garagemq() {
    if answers_amqp 5673; then
        say "GarageMQ: already answering on 127.0.0.1:5673, left as it is"
        return 0
    fi
    install_package garagemq || return 1
    local dir="${garagemq_dir:-$state/garagemq}"
    mkdir -p "$dir/db"
    dir=$(cd "$dir" && pwd)
    [ -n "$garagemq_dir" ] && [ -f "$dir/config.yaml" ] || sed "s|@DB@|$dir/db|" brokers/garagemq.yaml > "$dir/config.yaml"
    say "GarageMQ: starting from $dir/config.yaml (log: $dir/garagemq.log)"
    # Never --hprof: it listens on 0.0.0.0:8080.
    nohup garagemq --config "$dir/config.yaml" --log-file "$dir/garagemq.log" --log-level warning \
        >"$dir/stdout.log" 2>&1 </dev/null &
    echo $! > "$dir/garagemq.pid"
    if ! wait_for GarageMQ 5673 20; then
        say "GarageMQ did not answer on 127.0.0.1:5673 within 20 s; its log:" >&2
        tail -n 5 "$dir/garagemq.log" "$dir/stdout.log" >&2 || true
        return 1
    fi
    say "GarageMQ: answering on 127.0.0.1:5673 (pid $(cat "$dir/garagemq.pid"))"
}

# The pids of the GarageMQ instances this project started, from any checkout (each runs with
# a config.yaml under some <checkout>/target/brokers/garagemq/): the one on 127.0.0.1:5673 may
# have been started from another checkout of the project than this one.
project_garagemq() {
    pgrep -f -- "^garagemq --config [^ ]*/brokers/garagemq/config.yaml" || true
}

# Stop the GarageMQ this project started: SIGTERM, then SIGKILL for whatever is still there after
# 2 s (a deadlocked GarageMQ never finishes its shutdown). Its directory is kept in
# $garagemq_dir, so that it is started again on the same data (durable queues survive).
garagemq_dir=""
stop_garagemq() {
    local pids pid config
    pids=$(project_garagemq)
    [ -n "$pids" ] || return 0
    for pid in $pids; do
        config=$(ps -o args= -p "$pid" | sed -n 's/.*--config \([^ ]*\).*/\1/p')
        [ -n "$config" ] && garagemq_dir=$(dirname "$config")
    done
    kill $pids 2>/dev/null || true
    for _ in $(seq 1 20); do
        [ -n "$(project_garagemq)" ] || break
        sleep 0.1
    done
    pids=$(project_garagemq)
    if [ -n "$pids" ]; then
        say "GarageMQ: pid $pids still running 2 s after SIGTERM; killing it"
        kill -9 $pids 2>/dev/null || true
        for _ in $(seq 1 50); do
            [ -n "$(project_garagemq)" ] || break
            sleep 0.1
        done
    fi
    rm -f "${garagemq_dir:-$state/garagemq}/garagemq.pid"
    say "GarageMQ: stopped"
}

restart=0
if [ "${1:-}" = "--restart" ]; then restart=1; shift; fi
brokers=("$@")
[ ${#brokers[@]} -gt 0 ] || brokers=(rabbitmq garagemq)
failed=0
for b in "${brokers[@]}"; do
    case "$b" in
    rabbitmq)
        if [ $restart = 1 ]; then
            say "RabbitMQ: restarting the application (rabbitmqctl stop_app, start_app)"
            rabbitmqctl -q stop_app >/dev/null && rabbitmqctl -q start_app >/dev/null || failed=1
        else
            rabbitmq || failed=1
        fi
        ;;
    garagemq)
        if [ $restart = 1 ]; then stop_garagemq; fi
        garagemq || failed=1
        ;;
    *)
        say "unknown broker '$b' (known: rabbitmq, garagemq)" >&2
        failed=1
        ;;
    esac
done
exit $failed

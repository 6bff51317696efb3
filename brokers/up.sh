#!/usr/bin/env bash
# Make the brokers the suite runs against available (`just brokers`, called by ./check):
#   RabbitMQ on 127.0.0.1:5672 and GarageMQ on 127.0.0.1:5673, guest/guest, loopback only.
# Each is installed from Debian's packages if missing and started if not already answering;
# one that answers is left alone, so running this twice is harmless. Says what it did, or why
# it could not, and exits non-zero if a broker is not answering AMQP at the end.
#
# Four more brokers under test, started only when named (`extra` names all four):
#   lavinmq           LavinMQ 1.0.1            127.0.0.1:5682  (http 15682)
#   garagemq-master   GarageMQ at 2024 master  127.0.0.1:5683  (admin 15683; brokers/garagemq-master.yaml)
#   dispatchd         dispatchd                127.0.0.1:5684  (admin 15684)
#   dispatchd-strict  dispatchd -strict-mode   127.0.0.1:5685  (admin 15685)
# all guest/guest on the virtual host `/`, every listener on 127.0.0.1. They are built from
# ../shared/brokers (beside the checkout; EXTRA_BROKERS_SRC overrides it, relative to the
# checkout) by its build.sh, into a cache that outlives the checkout:
# ${EXTRA_BROKERS_CACHE:-${XDG_CACHE_HOME:-~/.cache}/amqp-conformance/extra-brokers}/<hash of
# build.sh and src/>/ (about 2 minutes the first time, with apt-get; nothing when cached). Where
# ../shared/brokers is missing one line says so and those brokers are skipped: not available is
# not a failure, so the exit status counts only the brokers that exist here (a failed build
# counts). Every broker answering at the end has its own line ("NAME: answering on ..." or
# "already answering"). Data and logs, for every broker but RabbitMQ, are under
# ${CARGO_TARGET_DIR:-target}/brokers/<name>/ (the extra brokers' data in data/ or db/, their
# output in <name>.log). A restart of one of them sends SIGTERM, SIGKILL after a few seconds
# (2 s for GarageMQ), and waits at most 30 s (LavinMQ 60 s) for it to answer again. LavinMQ also
# binds the Unix socket /tmp/lavinmqctl.sock; dispatchd-strict's strict mode is set by a config
# file (dispatchd ignores -strict-mode given alone).
#
#   brokers/up.sh                      RabbitMQ and GarageMQ (only those two)
#   brokers/up.sh garagemq lavinmq     the ones named (rabbitmq, garagemq, lavinmq,
#                                      garagemq-master, dispatchd, dispatchd-strict; `extra` for
#                                      the last four, `all` for all six)
#   brokers/up.sh --restart garagemq   stop the broker(s) named (the instance this project started,
#                                      from this checkout or another, found by its command line)
#                                      and start it again on the same data, so that durable queues
#                                      and persistent messages survive; returns once it answers
#                                      AMQP again: the restart command of the restart fixtures
#                                      (RabbitMQ: rabbitmqctl stop_app, start_app)
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

# ---- the extra brokers, built from ../shared/brokers ----

extra_src="${EXTRA_BROKERS_SRC:-../shared/brokers}"
extra_cache="${EXTRA_BROKERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/amqp-conformance/extra-brokers}"
extra_names=(lavinmq garagemq-master dispatchd dispatchd-strict)

# Builds the extra brokers once per run (returns 0, or 2 when their sources are not here, 1 when
# the build failed), leaving their output directory in $extra_out (binaries in bin/). The cache
# is keyed by the hash of build.sh and src/, so a changed one builds afresh; a finished build is
# marked by `built`, and a lock keeps two runs from building into the same directory at once.
extra_status=""
extra_out=""
extra_build() {
    case "$extra_status" in ok) return 0 ;; missing) return 2 ;; failed) return 1 ;; esac
    extra_status=failed
    if [ ! -f "$extra_src/build.sh" ] || [ ! -d "$extra_src/src" ]; then
        extra_status=missing
        say "$extra_src not found (EXTRA_BROKERS_SRC): ${extra_names[*]} not available here, skipped"
        return 2
    fi
    local src key start
    src=$(cd "$extra_src" && pwd)
    key=$(cd "$src" && find build.sh src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum |
        sha256sum | cut -c1-16)
    extra_out=$extra_cache/$key
    if [ ! -f "$extra_out/built" ]; then
        mkdir -p "$extra_out"
        if ! (
            flock 9
            [ -f "$extra_out/built" ] && exit 0
            say "extra brokers: building them with $src/build.sh into $extra_out" \
                "(about 2 minutes; log: $extra_out/build.log)"
            start=$SECONDS
            bash "$src/build.sh" "$extra_out" >"$extra_out/build.log" 2>&1 || exit 1
            touch "$extra_out/built"
            say "extra brokers: built in $((SECONDS - start)) s"
        ) 9>"$extra_cache/build.lock"; then
            say "extra brokers: the build failed; the end of $extra_out/build.log:" >&2
            tail -n 15 "$extra_out/build.log" >&2 || true
            return 1
        fi
    fi
    extra_status=ok
}

# NAME's label, port, admin port, seconds to wait for it to answer after starting it, seconds
# between SIGTERM and SIGKILL when stopping it, and the command line of the instance the project
# started (an extended regular expression on the whole command line: the binary, wherever it was
# built, with a data directory under some <checkout>/<target>/brokers/NAME/).
extra_def() {
    local dir="[^ ]*/brokers/$1"
    case "$1" in
    lavinmq)
        label=LavinMQ port=5682 admin=15682 start_wait=60 term_wait=10
        cmdline="^[^ ]*/lavinmq -D $dir/data( |\$)" ;;
    garagemq-master)
        # A deadlocked GarageMQ never finishes its shutdown: SIGKILL after 2 s, as for GarageMQ.
        label="GarageMQ master" port=5683 admin=15683 start_wait=30 term_wait=2
        cmdline="^[^ ]*/garagemq --config $dir/config.yaml( |\$)" ;;
    dispatchd | dispatchd-strict)
        label=$1 start_wait=30 term_wait=5
        if [ "$1" = dispatchd ]; then port=5684 admin=15684; else port=5685 admin=15685; fi
        cmdline="^[^ ]*/dispatchd -amqp-port [0-9]+ -admin-port [0-9]+ -persist-dir $dir/data( |\$)" ;;
    esac
}

# The pids of NAME's instances this project started, from any checkout.
project_extra() {
    extra_def "$1"
    pgrep -f -- "$cmdline" || true
}

# Waits until 127.0.0.1:PORT answers AMQP, for at most SECONDS; gives up sooner when no instance
# of NAME is running 3 s after the start (it failed to start).
wait_answering() {
    local name=$1 port=$2 deadline=$((SECONDS + $3)) since=$SECONDS
    until answers_amqp "$port"; do
        [ $SECONDS -lt $deadline ] || return 1
        # Right after the launch the broker's command line is still the launching shell's or
        # setsid's, which project_extra does not match: give up for want of a process only
        # once it has had 3 s to become itself.
        if [ -z "$(project_extra "$name")" ] && [ $((SECONDS - since)) -ge 3 ]; then return 1; fi
        sleep 0.2
    done
}

# Starts NAME unless it answers, on the data under DIR (default $state/NAME). Returns 0 when it
# answers, 2 when it is not available here, 1 otherwise.
start_extra() {
    local name=$1 dir=${2:-} bin pids log rc=0
    extra_def "$name"
    if answers_amqp "$port"; then
        say "$label: already answering on 127.0.0.1:$port, left as it is"
        return 0
    fi
    extra_build || return $?
    extra_def "$name"
    pids=$(project_extra "$name")
    if [ -n "$pids" ]; then
        say "$label: pid $pids is running but not answering on 127.0.0.1:$port; waiting for it"
        if wait_answering "$name" "$port" "$start_wait"; then
            say "$label: answering on 127.0.0.1:$port (pid $pids)"
            return 0
        fi
        say "$label: pid $pids does not answer on 127.0.0.1:$port;" \
            "brokers/up.sh --restart $name stops it and starts it again" >&2
        return 1
    fi
    dir=${dir:-$state/$name}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    bin=$extra_out/bin
    log=$dir/$name.log
    echo "--- $(date -Is) brokers/up.sh starts $name" >>"$log"
    # Each in its own session (setsid), so that it outlives whatever ran this script, and with
    # its directory as working directory, so that nothing it writes lands in the checkout.
    case "$name" in
    lavinmq)
        # -b: AMQP and HTTP on loopback. It also binds the Unix socket /tmp/lavinmqctl.sock (for
        # lavinmqctl; a fixed path). CONFIGURATION_DIRECTORY: no /etc/lavinmq/lavinmq.ini.
        mkdir -p "$dir/data"
        (cd "$dir" && CONFIGURATION_DIRECTORY=$dir exec setsid "$bin/lavinmq" -D "$dir/data" \
            -b 127.0.0.1 -p "$port" --http-port="$admin" -l warn >>"$log" 2>&1 </dev/null) &
        ;;
    garagemq-master)
        mkdir -p "$dir/db"
        sed "s|@DB@|$dir/db|" brokers/garagemq-master.yaml >"$dir/config.yaml"
        # Never --hprof: it listens on 0.0.0.0:8080.
        (cd "$dir" && exec setsid "$bin/garagemq" --config "$dir/config.yaml" --log-file "$log" \
            --log-level warning >>"$dir/stdout.log" 2>&1 </dev/null) &
        ;;
    dispatchd | dispatchd-strict)
        # build.sh makes both its listeners loopback only. Its -strict-mode flag alone does
        # nothing (dispatchd/config.go sets strict mode from the config file, false when the file
        # does not say): the config file says it. Without "users" there, guest/guest.
        mkdir -p "$dir/data"
        local strict=()
        if [ "$name" = dispatchd-strict ]; then
            echo '{"strict-mode": true}' >"$dir/config.json"
            strict=(-config-file "$dir/config.json" -strict-mode)
        fi
        (cd "$dir" && STATIC_PATH=$extra_out/dispatchd-static exec setsid "$bin/dispatchd" \
            -amqp-port "$port" -admin-port "$admin" -persist-dir "$dir/data" "${strict[@]}" \
            >>"$log" 2>&1 </dev/null) &
        ;;
    esac
    say "$label: starting on $dir (log: $log)"
    wait_answering "$name" "$port" "$start_wait" || rc=1
    pids=$(project_extra "$name")
    echo "$pids" >"$dir/$name.pid"
    if [ $rc != 0 ]; then
        say "$label did not answer on 127.0.0.1:$port within $start_wait s; its log:" >&2
        tail -n 5 "$log" "$dir/stdout.log" 2>/dev/null >&2 || true
        return 1
    fi
    say "$label: answering on 127.0.0.1:$port (pid $pids)"
}

# Stops NAME's instance (SIGTERM, SIGKILL for whatever is left after its term_wait) and leaves
# its directory in $extra_dir, to start it again on the same data.
extra_dir=""
stop_extra() {
    local name=$1 pids pid d deadline
    extra_def "$name"
    extra_dir=""
    pids=$(project_extra "$name")
    if [ -z "$pids" ]; then
        say "$label: not running"
        return 0
    fi
    for pid in $pids; do
        d=$(ps -o args= -p "$pid" | grep -o "[^ ]*/brokers/$name/" | head -n 1) || true
        [ -n "$d" ] && extra_dir=${d%/}
    done
    kill $pids 2>/dev/null || true
    deadline=$((SECONDS + term_wait))
    while [ -n "$(project_extra "$name")" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if [ -n "$(project_extra "$name")" ]; then
        say "$label: pid $(project_extra "$name") still running $term_wait s after SIGTERM; killing it"
        kill -9 $(project_extra "$name") 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while [ -n "$(project_extra "$name")" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        if [ -n "$(project_extra "$name")" ]; then
            say "$label: pid $(project_extra "$name") survives SIGKILL" >&2
            return 1
        fi
    fi
    rm -f "${extra_dir:-$state/$name}/$name.pid"
    say "$label: stopped (pid $pids)"
}

# --restart NAME: build (or find in the cache) first, so that a broker is never stopped when it
# cannot be started again.
restart_extra() {
    local name=$1 rc=0
    extra_build || rc=$?
    if [ $rc != 0 ]; then
        extra_def "$name"
        if [ $rc = 2 ] && [ -z "$(project_extra "$name")" ]; then return 2; fi
        say "$label: cannot be restarted without its binaries" >&2
        return 1
    fi
    stop_extra "$name" || return 1
    start_extra "$name" "$extra_dir"
}

restart=0
if [ "${1:-}" = "--restart" ]; then restart=1; shift; fi
brokers=()
for b in "$@"; do
    case "$b" in
    extra) brokers+=("${extra_names[@]}") ;;
    all) brokers+=(rabbitmq garagemq "${extra_names[@]}") ;;
    *) brokers+=("$b") ;;
    esac
done
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
    lavinmq | garagemq-master | dispatchd | dispatchd-strict)
        # 2: not available here (said once), which is not a failure.
        rc=0
        if [ $restart = 1 ]; then restart_extra "$b" || rc=$?; else start_extra "$b" || rc=$?; fi
        [ $rc != 1 ] || failed=1
        ;;
    *)
        say "unknown broker '$b' (known: rabbitmq garagemq ${extra_names[*]}, extra, all)" >&2
        failed=1
        ;;
    esac
done
exit $failed

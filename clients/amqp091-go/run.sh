#!/usr/bin/env bash
# Runs the integration tests of amqp091-go (RabbitMQ's Go client) against any AMQP 0-9-1 broker
# and writes one verdict per test as JSON: "a real client's own test suite" for the matrix.
#
# Usage:
#   clients/amqp091-go/run.sh [options] URL OUT.json [TEST_REGEX]
#   clients/amqp091-go/run.sh --build-only
#
#   URL         amqp://user:pass@host:port/vhost, handed to the tests as AMQP_URL
#   OUT.json    where the results go (see README.md beside this file for the format)
#   TEST_REGEX  optional Python regex (re.search) on test names, e.g. 'Publish|Consume'
#
# Options:
#   -j N           run N tests at once (default 2); output order is the suite's order regardless
#   --timeout S    per-test limit in seconds (default 120): go's -test.timeout, plus an outer kill
#   --all          also run the client's unit tests that need no broker (default: only the tests
#                  in the client's `integration`-tagged files and the example that reads AMQP_URL)
#   --tail N       lines of output kept for a test that did not pass (default 40)
#   --tries N      how often a test that assumes `timing` (assumptions.toml: a reply within
#                  100-250 ms) is run before it counts as failed (default 3): on a loaded machine
#                  any broker misses such a window some of the time; the JSON keeps the earlier
#                  attempts
#   --rebuild      rebuild the test binary even when the cache has it
#   --build-only   install/build/cache the test binary and stop (no broker needed)
#
# Example (RabbitMQ of this project):
#   clients/amqp091-go/run.sh -j 2 amqp://guest:guest@127.0.0.1:5672/ /tmp/amqp091-go.json
#
# What it does:
#   1. Makes sure Debian's golang-go and golang-github-rabbitmq-amqp091-go-dev are installed
#      (apt-get, when run as root; the latter ships the client's source with its tests).
#   2. Builds the test binary once, offline, in GOPATH mode against /usr/share/gocode
#      (`go test -c -tags integration`), into a cache outside the work tree keyed by the
#      package's and Go's versions: $AMQP091_CACHE, else
#      ${XDG_CACHE_HOME:-$HOME/.cache}/amqp-conformance/amqp091-go/<pkg-version>_<go-version>/.
#      A fresh clone on the same machine reuses it.
#   3. Checks that URL answers the AMQP protocol header, lists the tests (`-test.list`) and runs
#      each in its own process (`-test.run '^Name$' -test.v -test.timeout`), under an outer
#      timeout, so a panic or hang ends only that test. Tests listed as a [[chain]] in
#      assumptions.toml run one after the other in one worker (one depends on the other's state).
#   4. Writes OUT.json (pass / fail / skip / timeout / panic, seconds, reason and output tail)
#      and prints a one-line summary.
#
# Exit status: 0 when the suite ran, whatever the verdicts; non-zero with a one-line reason on
# stderr when the binary could not be built, the URL does not answer, or the usage is wrong.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pkg=golang-github-rabbitmq-amqp091-go-dev
import_path=github.com/rabbitmq/amqp091-go
gocode=/usr/share/gocode
recipe=1 # bump when the build recipe below changes, to invalidate old cache entries

die() { echo "amqp091-go: $*" >&2; exit 2; }

jobs=2 timeout=120 all=0 tail=40 tries=3 rebuild=0 build_only=0
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        -j) [ $# -ge 2 ] || die "-j needs a number"; jobs="$2"; shift 2 ;;
        -j*) jobs="${1#-j}"; shift ;;
        --timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; timeout="$2"; shift 2 ;;
        --tail) [ $# -ge 2 ] || die "--tail needs a number"; tail="$2"; shift 2 ;;
        --tries) [ $# -ge 2 ] || die "--tries needs a number"; tries="$2"; shift 2 ;;
        --all) all=1; shift ;;
        --rebuild) rebuild=1; shift ;;
        --build-only) build_only=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --) shift; args+=("$@"); break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) args+=("$1"); shift ;;
    esac
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "-j wants a positive integer, got '$jobs'"
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die "--timeout wants whole seconds, got '$timeout'"
[[ "$tail" =~ ^[0-9]+$ ]] || die "--tail wants a number, got '$tail'"
[[ "$tries" =~ ^[1-9][0-9]*$ ]] || die "--tries wants a positive integer, got '$tries'"
if [ "$build_only" = 0 ] && { [ ${#args[@]} -lt 2 ] || [ ${#args[@]} -gt 3 ]; }; then
    die "usage: run.sh [-j N] [--timeout S] [--all] URL OUT.json [TEST_REGEX] (see --help)"
fi

# 1. toolchain and client source, from Debian's packages
if ! command -v go >/dev/null 2>&1 || [ ! -f "$gocode/src/$import_path/integration_test.go" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "amqp091-go: installing golang-go and $pkg with apt-get" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq golang-go "$pkg" >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq golang-go "$pkg" >/dev/null 2>&1; } ||
            die "could not build: apt-get install golang-go $pkg failed"
    fi
    command -v go >/dev/null 2>&1 || die "could not build: no 'go' (apt-get install golang-go)"
    [ -f "$gocode/src/$import_path/integration_test.go" ] ||
        die "could not build: no client source in $gocode (apt-get install $pkg)"
fi
command -v python3 >/dev/null 2>&1 || die "could not run: python3 is needed for the runner"

# 2. the test binary, built once per (package version, Go version)
pkgver="$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo unknown)"
gover="$(go env GOVERSION 2>/dev/null || go version | awk '{print $3}')"
cache_root="${AMQP091_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/amqp-conformance/amqp091-go}"
key="$(printf '%s_%s_r%s' "$pkgver" "$gover" "$recipe" | tr -c 'A-Za-z0-9._+-' '_')"
dir="$cache_root/$key"
bin="$dir/amqp091-go.test"

build() {
    local tmp="$cache_root/.build.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp/gopath/src/github.com/rabbitmq"
    cp -r "$gocode/src/$import_path" "$tmp/gopath/src/github.com/rabbitmq/"
    local t0=$SECONDS
    if ! (cd "$tmp/gopath/src/$import_path" &&
          env GO111MODULE=off GOPATH="$tmp/gopath:$gocode" GOFLAGS= GOPROXY=off GOTOOLCHAIN=local \
              GOCACHE="$cache_root/go-build" \
              go test -c -tags integration -o "$tmp/amqp091-go.test" . ) >"$tmp/build.log" 2>&1; then
        local why; why="$(grep -v '^#' "$tmp/build.log" | head -n 1)"
        die "could not build the test binary: ${why:-see $tmp/build.log}"
    fi
    mv "$tmp/gopath/src/$import_path" "$tmp/src"
    rm -rf "$tmp/gopath"
    printf 'package=%s %s\ngo=%s\nbuilt=%s\nbuild_seconds=%s\n' "$pkg" "$pkgver" "$gover" \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - t0))" >"$tmp/VERSION"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    echo "amqp091-go: built $bin in $((SECONDS - t0))s" >&2
}

mkdir -p "$cache_root" || die "could not build: cannot create cache $cache_root"
if [ "$rebuild" = 1 ] || [ ! -x "$bin" ]; then
    # one builder at a time; a waiting one finds the binary built
    exec 9>"$cache_root/.lock"
    flock 9
    if [ "$rebuild" = 1 ] || [ ! -x "$bin" ]; then build; fi
    flock -u 9
    exec 9>&-
fi
if [ "$build_only" = 1 ]; then
    echo "amqp091-go: test binary ready: $bin"
    exit 0
fi

# 3-4. list, run, report
exec python3 "$here/runner.py" --binary "$bin" --src "$dir/src" --assumptions "$here/assumptions.toml" \
    --version "$pkgver" --go "$gover" --jobs "$jobs" --timeout "$timeout" --tail "$tail" --tries "$tries" \
    $([ "$all" = 1 ] && echo --all) -- "${args[@]}"

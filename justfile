# The project's commands. `just check` is what CI runs (through .ci/run).

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# What CI runs: fmt, clippy -D warnings, all tests, fixtures on the model, the CI model check.
check: fmt-check clippy test fixtures model-check

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

# Run every fixture against the model under both profiles (validated by the conformance runner).
fixtures:
    cargo run -q -p amqp-conformance -- run fixtures --profile rabbitmq
    cargo run -q -p amqp-conformance -- run fixtures --profile spec

# Run every fixture against the broker at $AMQP_URL (default: the local RabbitMQ), rabbitmq profile.
conform:
    cargo run -q -p amqp-conformance -- run fixtures --profile rabbitmq --broker "${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

# Model-check the CI configuration (exhaustive, every property must hold).
model-check config="ci":
    cargo run --release -p amqp-model --bin amqp-model -- check {{config}}

# Open stateright's Explorer on 127.0.0.1:3000 for a configuration.
explore config="quick":
    cargo run --release -p amqp-model --bin amqp-model -- explore {{config}}

# Benchmarks: model throughput against its clone+hash floor, and every check configuration.
bench:
    cargo bench -p amqp-model --bench model

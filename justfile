# ClaimGuardian developer recipes. `just --list` shows them.

# Run the whole platform on a private PostgreSQL, with the demo organization.
up *args:
    cargo run -p claimguardian -- up --demo {{args}}

# The test suite, exactly as CI runs it.
test:
    python3 -m pip install --quiet -r tests/requirements.txt && npm ci --prefix tests/oidc && cargo test --workspace

# Formatting, lints and proto lint.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    buf lint

# Format the code.
fmt:
    cargo fmt --all

# Benchmarks (not tests): results and method in docs/benchmarks.md.
bench: bench-audit bench-gateway

# Audit appends and chain verification.
bench-audit *args:
    cargo run --release -p claimguardian --bin claimguardian-bench -- audit {{args}}

# The gateway's hop cost; builds the server binary the benchmark starts as processes.
bench-gateway *args:
    cargo build --release -p claimguardian --bins
    cargo run --release -p claimguardian --bin claimguardian-bench -- gateway {{args}}

# Everything CI runs.
ci:
    bash .ci/run

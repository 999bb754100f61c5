# Switchboard: `make run` starts the gateway, `make test` checks everything.
# Both install what they need on a fresh Debian machine with Swift (scripts/install-deps).

SWIFT      ?= swift
RELEASE    := .build/release
SPEC       ?= spec/protocol.yaml
AUTOBAHN   ?= ../shared/tools/autobahn/run
PORT       ?= 8080

.PHONY: deps build release run test unit check-generated generate spec-edit-test conformance conformance-deflate browser sim soak bench fuzz clean

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product switchboard
	$(SWIFT) build -c release --product switchboard-fixture

# The embedded default gateway on 127.0.0.1:$(PORT).
run: release
	$(RELEASE)/switchboard serve --port $(PORT)

generate: deps
	$(SWIFT) run switchboard-gen generate --spec $(SPEC)

check-generated: deps
	$(SWIFT) run switchboard-gen check --spec $(SPEC)

# Serial: end-to-end tests start servers and measure timeouts; on 2 cores, running them in
# parallel with everything else makes timing-sensitive assertions flaky (~50 s either way).
unit: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

# Everything CI runs: generated files current, unit/property/end-to-end/simulation tests,
# spec edits reaching the gateway, RFC 6455 conformance, and the demo page in a headless browser.
test: check-generated unit spec-edit-test conformance browser

# A copy of the repository with a new close code, client event and timer in its spec only:
# generated, built (debug, a few minutes) and driven over WebSockets (Tests/SpecEdit/run).
spec-edit-test: deps
	SWIFT=$(SWIFT) Tests/SpecEdit/run

conformance: release
	scripts/conformance $(AUTOBAHN)

# Kernel throughput, then wsload against the peers (Bun, Hummingbird, Python) in one run.
# permessage-deflate cases 12.* and 13.* (216 cases; the Python 2 client needs 10-20 minutes).
conformance-deflate: release
	FIXTURE_FLAGS=--per-message-deflate scripts/conformance $(AUTOBAHN) --cases '12.*,13.*'

# The demo page in headless Chromium: two sessions exchange a message through a room.
browser: release
	SWITCHBOARD_BIN=$(RELEASE)/switchboard Tests/Browser/run

# One simulation seed, replayed exactly: make sim SEED=42 (no SEED: a random one, printed).
sim: deps
	scripts/sim $(SEED)

# Random simulation seeds for SOAK_SECONDS (default 600), then the real server under hostile
# input and 10,000 idle connections for SOAK_SECONDS, with memory checked flat (docs/soak.md).
SOAK_SECONDS ?= 600
soak: deps
	scripts/sim --soak $(SOAK_SECONDS)
	scripts/soak-hostile $(SOAK_SECONDS)

bench: deps
	scripts/bench

fuzz: deps
	scripts/fuzz

clean:
	rm -rf .build

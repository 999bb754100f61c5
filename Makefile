# Switchboard: `make run` starts the gateway, `make test` checks everything.
# Both install what they need on a fresh Debian machine with Swift (scripts/install-deps).

SWIFT      ?= swift
RELEASE    := .build/release
SPEC       ?= spec/protocol.yaml
PORT       ?= 8080

.PHONY: deps build release release-binary install run test unit test-nio test-uring check-generated generate golden spec-edit-test conformance conformance-deflate browser sim soak bench fuzz clean

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product switchboard
	$(SWIFT) build -c release --product switchboard-fixture

# Installs the gateway for systemd (README, "Deploy"): the release binary in $(BINDIR),
# config/production.yaml as $(SYSCONFDIR)/switchboard/switchboard.yaml (an existing one is
# kept), packaging/switchboard.service in $(UNITDIR) with its paths rewritten, and the docs.
# DESTDIR stages the tree elsewhere (packaging); SWITCHBOARD_BIN installs a binary already
# built instead of building the release one.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/switchboard
SWITCHBOARD_BIN ?=
INSTALL    ?= install

install: $(if $(SWITCHBOARD_BIN),,release-binary)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/switchboard $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 $(or $(SWITCHBOARD_BIN),$(RELEASE)/switchboard) $(DESTDIR)$(BINDIR)/switchboard
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.yaml ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.yaml (config/production.yaml is the new default)"; \
	else \
		echo "$(INSTALL) -m 0644 config/production.yaml $(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.yaml"; \
		$(INSTALL) -m 0644 config/production.yaml $(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.yaml; \
	fi
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/usr/local/share/doc/switchboard|$(DOCDIR)|g' \
		-e 's|/etc/switchboard/|$(SYSCONFDIR)/switchboard/|g' packaging/switchboard.service > $(DESTDIR)$(UNITDIR)/switchboard.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/switchboard.service
	$(INSTALL) -m 0644 README.md docs/configuration.md $(DESTDIR)$(DOCDIR)/

release-binary: deps
	$(SWIFT) build -c release --product switchboard

# The embedded default gateway on 127.0.0.1:$(PORT).
run: release
	$(RELEASE)/switchboard serve --port $(PORT)

generate: deps
	$(SWIFT) run switchboard-gen generate --spec $(SPEC)

check-generated: deps
	$(SWIFT) run switchboard-gen check --spec $(SPEC)

# Rewrites the kernel's golden traces (Tests/KernelPropertyTests/Golden/seed-N.txt) after an
# intended change of the kernel, the spec or the scenario generator; review the diff.
golden: deps
	$(SWIFT) build --build-tests
	SWITCHBOARD_UPDATE_GOLDEN=1 $(SWIFT) test --skip-build --filter GoldenTraceTests
	$(SWIFT) build --build-tests  # copies the new files into the test bundle

# Serial: end-to-end tests start servers and measure timeouts; on 2 cores, running them in
# parallel with everything else makes timing-sensitive assertions flaky (~50 s either way).
unit: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

# The end-to-end and seed-error suite again, the fixture on SwitchboardNIO's driver
# (`--driver nio`, chosen by SWITCHBOARD_FIXTURE_DRIVER; about 50 s), wss:// included.
test-nio: deps
	$(SWIFT) build --build-tests
	SWITCHBOARD_FIXTURE_DRIVER=nio $(SWIFT) test --skip-build --no-parallel --filter EndToEndTests

# The same suite on SwitchboardURing's io_uring driver (`--driver uring`), where the kernel and
# the container allow io_uring: the fixture's --print-driver says which driver --driver uring
# gets (epoll when io_uring is unavailable, with the reason on stderr), and the target skips
# with that reason instead of running the suite on epoll twice. Not the two wss:// tests:
# URingDriver serves no TLS (docs/drivers.md, "The io_uring driver").
test-uring: deps
	$(SWIFT) build --build-tests
	@fixture="$$($(SWIFT) build --show-bin-path)/switchboard-fixture"; \
	if [ "$$("$$fixture" --driver uring --print-driver 2>/dev/null)" = "DRIVER uring" ]; then \
		echo "SWITCHBOARD_FIXTURE_DRIVER=uring $(SWIFT) test --skip-build --no-parallel --filter EndToEndTests ..."; \
		SWITCHBOARD_FIXTURE_DRIVER=uring $(SWIFT) test --skip-build --no-parallel --filter EndToEndTests \
			--skip 'wssServesAuthenticatedClientsWithALPN|badCertificatePathIsAStartupError'; \
	else \
		echo "test-uring: skipped: $$("$$fixture" --driver uring --print-driver 2>&1 >/dev/null)"; \
	fi

# Everything CI runs: generated files current, unit/property/end-to-end/simulation tests (the
# end-to-end ones on the NIO driver too, and on the io_uring driver where io_uring is
# available), spec edits reaching the gateway, RFC 6455 conformance, and the demo page in a
# headless browser.
test: check-generated unit test-nio test-uring spec-edit-test conformance browser

# A copy of the repository with a new close code, client event and timer in its spec only:
# generated, built (debug, a few minutes) and driven over WebSockets (Tests/SpecEdit/run).
spec-edit-test: deps
	SWIFT=$(SWIFT) Tests/SpecEdit/run

# RFC 6455: 247 Autobahn|Testsuite cases against the fixture. scripts/autobahn installs the
# Python 2.7 client under ~/.cache/switchboard/autobahn on first use (about a minute).
conformance: release
	scripts/conformance

# permessage-deflate cases 12.* and 13.* (216 cases; the Python 2 client needs 10-20 minutes).
conformance-deflate: release
	FIXTURE_FLAGS=--per-message-deflate scripts/conformance --cases '12.*,13.*'

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

# Kernel throughput, then the load generator of bench/load against Switchboard and the
# reference servers in one run (bench/README.md).
bench: deps
	scripts/bench

fuzz: deps
	scripts/fuzz

clean:
	rm -rf .build

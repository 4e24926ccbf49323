# Keyward — the two commands that matter:
#   make run    install what is missing, build, start Keyward (embedded, dev)
#   make run-ha the same, highly available on loopback: etcd, PostgreSQL
#               primary + synchronous standby under Patroni, 3 keywardd (docs/ha.md)
#   make test   install what is missing, build, run every test
# and the others: make build | install [PREFIX=/usr/local] | package | bench |
#   fuzz | test-asan | format | clean

PRESET   ?= release
BUILD    := build/$(PRESET)
JOBS     ?= $(shell nproc)
FUZZ_SECONDS ?= 20
PREFIX   ?= /usr/local

.PHONY: all deps configure build install package run run-ha test test-asan fuzz fuzz-smoke bench format clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET) -j $(JOBS)

# libkeyward (shared + static), headers, CMake package, keyward.pc, the
# binaries, the systemd unit and example configs under PREFIX.
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

# A Debian package (build/<preset>/keyward_<version>_<arch>.deb).
package: build
	@cd $(BUILD) && cpack -G DEB

run: build
	@scripts/run-dev

# Runs as root (PostgreSQL and Patroni run as the postgres user).  Stop it
# with `scripts/ha-stack stop build/ha`.
run-ha: build
	@KEYWARD_BIN=$(CURDIR)/$(BUILD)/bin scripts/ha-stack start build/ha

test: build
	@scripts/run-tests $(BUILD)
	@if command -v clang++ >/dev/null; then \
	  $(MAKE) --no-print-directory fuzz-smoke; \
	else echo "fuzz smoke skipped: clang is not installed"; fi

# The crypto, policy and audit log tests under AddressSanitizer +
# UndefinedBehaviorSanitizer.
test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS) --target crypto_test policy_test audit_test
	@build/asan/tests/crypto_test --gtest_brief=1
	@build/asan/tests/policy_test --gtest_brief=1
	@build/asan/tests/audit_test --gtest_brief=1

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS) --target fuzzers
	@echo "fuzzers built in build/fuzz/fuzz/: $$(ls build/fuzz/fuzz | tr '\n' ' ')"

# Runs every fuzzer for FUZZ_SECONDS each (part of `make test`).
fuzz-smoke: fuzz
	@scripts/fuzz-smoke build/fuzz/fuzz $(FUZZ_SECONDS)

bench: build
	@scripts/run-bench $(BUILD)

format:
	@find src include bench examples -name '*.h' -o -name '*.cc' | \
	  xargs clang-format -i

clean:
	rm -rf build

# Turnout — the two commands that do all setup on a fresh Debian machine with Swift:
#   make demo   install missing system packages, build, run the embedded demo
#   make test   the same setup, then every test (unit + end-to-end through the real binary)
# Other targets: build, unit, e2e, soak, fuzz, fuzz-config, bench, bench-instructions, bench-micro, deps, clean.

SWIFT        ?= swift
PYTHON       ?= python3
TURNOUT_BIN  ?= $(CURDIR)/.build/release/turnout
# System packages the build, the demo and the tests need (Debian names).
DEB_PACKAGES := libssl-dev zlib1g-dev curl python3 python3-pip ca-certificates procps strace

.PHONY: all deps build demo test unit e2e soak fuzz fuzz-config bench bench-instructions bench-micro clean

all: build

## deps: install missing system packages (as root, with apt-get) and pytest.
deps:
	@bash .ci/install-deps $(DEB_PACKAGES)
	@$(PYTHON) -c 'import pytest' 2>/dev/null || $(PYTHON) -m pip install --quiet pytest \
	  || $(PYTHON) -m pip install --quiet --break-system-packages pytest

## build: release build of turnout (the binary the demo and the end-to-end tests run).
## The Swift runtime and Foundation are linked in statically: one binary with no Swift
## shared libraries to install, a smaller resident set (docs/benchmarks.md) and direct
## calls into the runtime instead of calls through the PLT.
build:
	$(SWIFT) build -c release --static-swift-stdlib

## demo: the embedded demo (blue and green origins behind the proxy on 127.0.0.1:8080).
demo: deps build
	$(TURNOUT_BIN) demo

## test: unit tests, then end-to-end tests against the release binary.
test: deps
	$(MAKE) unit
	$(MAKE) build
	$(MAKE) e2e

unit:
	$(SWIFT) test

e2e:
	cd Tests/EndToEnd && TURNOUT_BIN=$(TURNOUT_BIN) TURNOUT_E2E_REQUIRE=1 $(PYTHON) -m pytest -q -ra

## soak: the large-transfer tests with 1 GiB bodies each way (a few minutes).
soak: deps build
	cd Tests/EndToEnd && TURNOUT_BIN=$(TURNOUT_BIN) TURNOUT_E2E_REQUIRE=1 TURNOUT_LARGE_MIB=1024 \
	  $(PYTHON) -m pytest -q -ra test_large.py

## fuzz: libFuzzer on the request-head parser and the chunked decoder for FUZZ_SECONDS
## (default 60), starting from Tests/Fuzz/corpus; new inputs collect in fuzz-corpus-work/.
## Built with swiftc directly (TurnoutHTTP as a static library with coverage, then the
## fuzz entry point), because libFuzzer brings its own main().
FUZZ_SECONDS ?= 60
FUZZ_DIR := .build-fuzz
fuzz:
	mkdir -p $(FUZZ_DIR) fuzz-corpus-work
	swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name TurnoutHTTP -emit-module \
	  -emit-module-path $(FUZZ_DIR)/TurnoutHTTP.swiftmodule -emit-library -static \
	  -o $(FUZZ_DIR)/libTurnoutHTTP.a Sources/TurnoutHTTP/*.swift
	swiftc -O -g -sanitize=fuzzer,address -parse-as-library -I $(FUZZ_DIR) -L $(FUZZ_DIR) -lTurnoutHTTP \
	  Tests/Fuzz/TurnoutFuzz/Fuzz.swift -o $(FUZZ_DIR)/TurnoutFuzz
	SWIFT_BACKTRACE=enable=no $(FUZZ_DIR)/TurnoutFuzz fuzz-corpus-work Tests/Fuzz/corpus \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1

## fuzz-config: libFuzzer on the configuration YAML reader and the JSON codec of the admin API
## and state file, for FUZZ_SECONDS, from Tests/Fuzz/config-corpus (new inputs in
## fuzz-config-corpus-work/). YAML.swift and JSON.swift are compiled into one module with the
## entry point, over the TurnoutHTTP library that `make fuzz` also builds.
fuzz-config:
	mkdir -p $(FUZZ_DIR) fuzz-config-corpus-work
	swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name TurnoutHTTP -emit-module \
	  -emit-module-path $(FUZZ_DIR)/TurnoutHTTP.swiftmodule -emit-library -static \
	  -o $(FUZZ_DIR)/libTurnoutHTTP.a Sources/TurnoutHTTP/*.swift
	swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name ConfigFuzz -I $(FUZZ_DIR) -L $(FUZZ_DIR) \
	  -lTurnoutHTTP Sources/TurnoutControl/YAML.swift Sources/TurnoutControl/JSON.swift \
	  Tests/Fuzz/ConfigFuzz/Fuzz.swift -o $(FUZZ_DIR)/ConfigFuzz
	SWIFT_BACKTRACE=enable=no $(FUZZ_DIR)/ConfigFuzz fuzz-config-corpus-work Tests/Fuzz/config-corpus \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1

## bench: nginx / HAProxy / Turnout side by side (Benchmarks/load/compare.sh).
bench: deps build
	TURNOUT_BIN=$(TURNOUT_BIN) bash Benchmarks/load/compare.sh

## bench-instructions: user-space instructions per proxied request for Turnout, HAProxy and nginx,
## counted by callgrind (Benchmarks/load/instructions.sh): independent of machine noise.
bench-instructions: deps build
	TURNOUT_BIN=$(TURNOUT_BIN) bash Benchmarks/load/instructions.sh

## bench-micro: parser, routing and in-process proxy benchmarks (ordo-one/benchmark), built
## in .build-bench so the release binary in .build stays as `make build` made it.
bench-micro:
	TURNOUT_BENCHMARKS=1 $(SWIFT) package --scratch-path .build-bench benchmark

clean:
	rm -rf .build

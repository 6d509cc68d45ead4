# Freightliner: a thin front door over CMake. `make help` lists the targets.

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
BUSTED     := lua5.4 /usr/bin/busted

.PHONY: all build test test-c test-lua test-e2e-quick test-e2e-full check \
        format sanitize tsan coverage bench bench-scale bench-quick hooks validate-env setup clean \
        demo fuzz help

all: build

help:
	@echo "make build          build bin/freightliner, the static library and the Lua module"
	@echo "make test           build, then run the C, Lua and quick e2e suites"
	@echo "make check          clang-format, clang-tidy, cppcheck, luacheck, -Werror build"
	@echo "make format         reformat C sources in place"
	@echo "make sanitize       ASan+UBSan build and test run"
	@echo "make tsan           ThreadSanitizer build and test run"
	@echo "make coverage       line coverage of src/ and lua/stdlib"
	@echo "make fuzz           run each libFuzzer target for FUZZ_SECONDS (default 30)"
	@echo "make bench          benchmark against skopeo (docs/BENCHMARKS.md), then bench-scale"
	@echo "make bench-scale    2,000/10,000-image fleets, 20/50 ms RTT, 100,000-tag plan (scripts/bench/scale.py)"
	@echo "make bench-quick    bench-scale at reduced size: a few minutes"
	@echo "make demo           the README's main job: a real replication on local registries"
	@echo "make hooks          install the git pre-commit hook"
	@echo "make validate-env   check that every tool and library is present"
	@echo "make setup          install what is missing (Debian 12, apt-get)"

setup:
	@scripts/setup.sh

validate-env:
	@scripts/validate-env.sh

# Every build first installs what is missing (a no-op in half a second when
# nothing is), so `make test` and `make demo` work on a fresh machine.
build:
	@scripts/setup.sh
	@test -f $(BUILD)/CMakeCache.txt || \
	  cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory
	@# bin/freightliner is the normal build, never a sanitizer one
	@if [ "$(BUILD)" = build ]; then mkdir -p bin && \
	  ln -sf ../build/bin/freightliner bin/freightliner; fi

test: build
	@scripts/run-tests.sh $(BUILD)

test-c: build
	@scripts/run-tests.sh $(BUILD) c

test-lua: build
	@scripts/run-tests.sh $(BUILD) lua

test-e2e-quick: build
	@scripts/run-tests.sh $(BUILD) e2e-quick

test-e2e-full: build
	@scripts/run-tests.sh $(BUILD) e2e-full

check:
	@scripts/check.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

sanitize:
	@$(MAKE) --no-print-directory BUILD=build-asan \
	  CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=address,undefined" test

tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan \
	  CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=thread" test

coverage:
	@scripts/coverage.sh

fuzz:
	@scripts/fuzz.sh $(or $(FUZZ_SECONDS),30)

bench: build
	@scripts/bench.sh
	@python3 scripts/bench/scale.py

bench-scale: build
	@python3 scripts/bench/scale.py

bench-quick: build
	@python3 scripts/bench/scale.py --images 500 --runs 1 --rtt 20 --lat-images 500 --plan-tags 20000 \
	  --out $(BUILD)/bench/scale-quick.json

demo: build
	@scripts/demo.sh

hooks:
	@scripts/install-hooks.sh

clean:
	rm -rf build build-asan build-tsan build-cov build-check bin

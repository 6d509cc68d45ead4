# Freightliner: a thin front door over CMake. `make help` lists the targets.

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
BUSTED     := lua5.4 /usr/bin/busted
PREFIX     ?= /usr/local
DESTDIR    ?=
# The version exists once, in include/freightliner.h.
VERSION    := $(shell sed -n 's/^\#define FL_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$$/\2/p' include/freightliner.h | paste -sd.)

.PHONY: all build test test-c test-lua test-e2e-quick test-e2e-full check \
        format sanitize tsan coverage bench bench-scale bench-quick hooks validate-env setup clean \
        demo fuzz fuzz-smoke bench-compare check-changed help install uninstall \
        dist dist-test test-install test-embed test-luarocks test-shard \
        test-kubernetes image image-test test-deploy \
        soak soak-asan soak-tsan fault-rate bench-serve soak-serve

all: build

help:
	@echo "make build          build bin/freightliner, the static library and the Lua module"
	@echo "make test           build, then run the C, Lua and quick e2e suites"
	@echo "make check          clang-format, clang-tidy, cppcheck, luacheck, -Werror build, secrets, deps"
	@echo "make check-changed  the same over files changed since BASE (default main)"
	@echo "make format         reformat C sources in place"
	@echo "make sanitize       ASan+UBSan build and test run"
	@echo "make tsan           ThreadSanitizer build and test run"
	@echo "make coverage       line coverage of src/ and lua/stdlib"
	@echo "make fuzz           run each libFuzzer target for FUZZ_SECONDS (default 30)"
	@echo "make fuzz-smoke     each libFuzzer target for 10 s (CI)"
	@echo "make bench          benchmark against skopeo (docs/BENCHMARKS.md), then bench-scale; appends bench/history.jsonl"
	@echo "make bench-scale    2,000/10,000-image fleets, 20/50 ms RTT, 100,000-tag plan (scripts/bench/scale.py)"
	@echo "make bench-quick    bench-scale at reduced size: a few minutes"
	@echo "make bench-compare  fail if a ratio regressed > 10% against the last run on this machine kind"
	@echo "make soak           240 copies through one engine, a third cancelled (SOAK_COPIES)"
	@echo "make soak-asan      the soak on the ASan+UBSan build (build-asan)"
	@echo "make soak-tsan      the soak on the ThreadSanitizer build (build-tsan)"
	@echo "make fault-rate     20 seeded runs at a 12% per-request fault rate"
	@echo "make bench-serve    serve under wrk load while replicating: errors, p99, RSS"
	@echo "make soak-serve     serve: 500 scheduled runs at 1 s, RSS within 10% (SERVE_SOAK_RUNS)"
	@echo "make demo           the README's main job: a real replication on local registries"
	@echo "make hooks          install the git pre-commit hook"
	@echo "make install        install under PREFIX (/usr/local), staged in DESTDIR"
	@echo "make dist           dist/freightliner-VERSION.tar.gz, the source tarball"
	@echo "make dist-test      build the tarball in a temp dir with the README's commands"
	@echo "make test-deploy    install, man page, embedding, LuaRocks, shard, Kubernetes tests"
	@echo "make image          OCI image with buildah, no daemon (build/image/oci)"
	@echo "make image-test     build, push with Freightliner, inspect and run the image"
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

# the gates over what changed since the merge base with BASE (default main)
check-changed:
	@CHECK_BASE=$(or $(BASE),main) scripts/check.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

sanitize:
	@$(MAKE) --no-print-directory BUILD=build-asan \
	  CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=address,undefined" test

tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan \
	  CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=thread" test

# The soak and the fault-rate measurement are long: their own targets, not
# `make test` (the quick suite runs a short soak, the full suite a short
# fault-rate run). The sanitizer forms build only what the soak needs.
soak: build
	@e2e/run.sh soak

soak-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan \
	  CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=address,undefined" build
	@FREIGHTLINER_BIN=$(CURDIR)/build-asan/bin/freightliner FL_SANITIZE=address \
	  ASAN_OPTIONS=detect_leaks=1 SOAK_COPIES=$(or $(SOAK_COPIES),200) e2e/run.sh soak

soak-tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan \
	  CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=thread" build
	@FREIGHTLINER_BIN=$(CURDIR)/build-tsan/bin/freightliner FL_SANITIZE=thread \
	  TSAN_OPTIONS=halt_on_error=1 SOAK_COPIES=$(or $(SOAK_COPIES),200) \
	  setarch $$(uname -m) -R e2e/run.sh soak

fault-rate: build
	@e2e/run.sh fault-rate

coverage:
	@scripts/coverage.sh

fuzz:
	@scripts/fuzz.sh $(or $(FUZZ_SECONDS),30)

fuzz-smoke:
	@scripts/fuzz.sh 10

bench: build
	@scripts/bench.sh
	@python3 scripts/bench/scale.py

bench-scale: build
	@python3 scripts/bench/scale.py

bench-quick: build
	@python3 scripts/bench/scale.py --images 500 --runs 1 --rtt 20 --lat-images 500 --plan-tags 20000 \
	  --out $(BUILD)/bench/scale-quick.json

bench-compare:
	@python3 scripts/bench/history.py compare

# serve's load test and its long soak (docs/BENCHMARKS.md): not in `make test`.
bench-serve: build
	@e2e/run.sh serve-bench --only serve_bench_wrk

soak-serve: build
	@e2e/run.sh serve-bench --only serve_soak_runs

demo: build
	@scripts/demo.sh

hooks:
	@scripts/install-hooks.sh

# ---- install and release (issue #14; docs in README "Deploy")
install: build
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# Removes exactly what `make install` with the same PREFIX and DESTDIR
# puts there (listed by a scratch install, not by the last install's
# manifest, which a test's DESTDIR install may have overwritten).
uninstall: build
	@t=$$(mktemp -d) && DESTDIR=$$t cmake --install $(BUILD) --prefix "$(PREFIX)" >/dev/null && \
	  (cd $$t && find . ! -type d | sed 's|^\.||') | while read -r f; do rm -f "$(DESTDIR)$$f"; done; \
	  (cd $$t && find . -depth -type d -name '*freightliner*' | sed 's|^\.||') | \
	  while read -r d; do rm -rf "$(DESTDIR)$$d"; done; rm -rf "$$t"; echo "uninstalled from $(DESTDIR)$(PREFIX)"

dist:
	@scripts/dist.sh dist dist $(VERSION)

dist-test: dist
	@scripts/dist.sh test dist/freightliner-$(VERSION).tar.gz

# The deploy tests (each also runs alone): `make test-deploy` runs them all.
test-install: build
	@scripts/test-install.sh $(BUILD)

test-embed: build
	@scripts/test-embed.sh $(BUILD)

test-luarocks: build
	@scripts/test-luarocks.sh $(BUILD)

test-shard: build
	@scripts/test-shard.sh $(BUILD)

test-kubernetes: build
	@deploy/kubernetes/validate.sh

test-deploy: test-install test-embed test-luarocks test-shard test-kubernetes

image: build
	@scripts/image.sh build $(BUILD)

image-test: build
	@scripts/image.sh test $(BUILD)

clean:
	rm -rf build build-asan build-tsan build-cov build-check bin dist

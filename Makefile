# The two commands a newcomer needs: `make demo` and `make test`. Each prepares the host
# first (packages, libvirtd), so each works alone on a fresh Debian 12 machine.

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all setup build appliance demo test lint unit doc clean fuzz bench

all: build

setup:
	$(SUDO) scripts/setup-host

build:
	$(CARGO) build --release

appliance:
	ovf/build-tiny >/dev/null

demo: setup build appliance
	scripts/demo

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

# The tests of remote use need the second libvirt host and the iSCSI target
# (scripts/second-host); they are stopped afterwards unless they were running before.
test: setup lint doc
	@if scripts/second-host status; then was=1; else was=; $(SUDO) scripts/second-host start >/dev/null; fi; \
	$(CARGO) test; rc=$$?; \
	[ -n "$$was" ] || $(SUDO) scripts/second-host stop; \
	exit $$rc

clean:
	$(CARGO) clean

# Every fuzz target for FUZZ_SECONDS (default 30) on the stable toolchain; fails on any
# crash. Installs cargo-fuzz if missing. See DEVELOPERS.md, "Fuzzing".
fuzz: setup
	CARGO="$(CARGO)" fuzz/run.sh

# The benchmark suite (benches/suite/, docs/performance.md): vmd against the tools users would
# use instead, on this host's libvirtd; BENCH_RUNS samples per row (default 5). Prints a
# markdown table and writes target/bench/results.json. Installs what only the bench's
# comparisons need, if missing: virt-install (virtinst) and mkfs.xfs (xfsprogs, row 3r).
# Row 8 imports into a pool on the second libvirt host (scripts/second-host), started here
# and stopped afterwards unless it was running before, as for `make test`.
bench: setup build appliance
	@missing=; \
	command -v virt-install >/dev/null || missing=virtinst; \
	command -v mkfs.xfs >/dev/null || [ -x /usr/sbin/mkfs.xfs ] || missing="$$missing xfsprogs"; \
	[ -z "$$missing" ] || $(SUDO) env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends $$missing >&2
	@if scripts/second-host status; then was=1; else was=; $(SUDO) scripts/second-host start >/dev/null; fi; \
	$(CARGO) bench --bench suite; rc=$$?; \
	[ -n "$$was" ] || $(SUDO) scripts/second-host stop; \
	exit $$rc

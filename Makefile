# The two commands a newcomer needs: `make demo` and `make test`. Each prepares the host
# first (packages, libvirtd), so each works alone on a fresh Debian 12 machine.

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all setup build appliance demo test lint unit doc clean

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

test: setup lint doc
	$(CARGO) test

clean:
	$(CARGO) clean

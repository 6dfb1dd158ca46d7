# The fault suites (issue 8): hosts as network namespaces (iproute2, and util-linux's unshare, which
# Debian always has) and skewed clocks (libfaketime, Debian's faketime package), installed when missing.
#   make fault-deps   install them when missing (mk/apt-install: as root, or have them installed)
#   make chaos        every fault scenario at full size, one table of figures, written to
#                     tests/fault/CHAOS.md (about 15 minutes; CHAOS="--only link-cut" picks scenarios)

FAULT_DEPS := iproute2 faketime

.PHONY: fault-deps chaos
check: fault-deps

fault-deps:
	@mk/apt-install $(FAULT_DEPS)

# The runner starts no scenario after 20 minutes (--budget); the timeout is the last resort, and the
# reapers of tests/server.py, tests/cluster.py and tests/hosts.py clean up after it.
chaos: $(STAMP) node_modules/.installed fault-deps
	timeout --signal=INT --kill-after=60 1800 $(BIN)/python -m tests.fault.chaos $(CHAOS)

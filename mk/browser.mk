# The dashboard's browser tests (tests/browser): Debian's Chromium and its chromedriver, driven by
# Selenium (requirements-dev.txt). Installed only when missing; nothing downloads a browser of its own.
#   make browser-deps   apt-get install chromium chromium-driver (as root, or have them installed)

BROWSER_DEPS := chromium chromium-driver

.PHONY: browser-deps
check: browser-deps

browser-deps:
	@missing=$$(for p in $(BROWSER_DEPS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "browser-deps: installing" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$$missing >/dev/null; \
	fi

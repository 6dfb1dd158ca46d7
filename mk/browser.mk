# The dashboard's browser tests (tests/browser): Debian's Chromium and its chromedriver, driven by
# Selenium (requirements-dev.txt). Installed only when missing; nothing downloads a browser of its own.
#   make browser-deps   install chromium and chromium-driver when missing (mk/apt-install: as root, or
#                       have them installed)

BROWSER_DEPS := chromium chromium-driver

.PHONY: browser-deps
check: browser-deps

browser-deps:
	@mk/apt-install $(BROWSER_DEPS)

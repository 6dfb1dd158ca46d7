# Debian package, plain install and the system packages the system tests need (issue 3).
#   make system-deps   apt-get install what `make deb` and tests/system need (only what is missing)
#   make deb           build dist/after_<version>_all.deb from packaging/debian (build tree under build/deb),
#                      in a git checkout or an unpacked source tarball (packaging/source-files)
#                      DEB_VERSION=0.1.0+1 builds a higher version, DIST= and DEB_BUILD= move the output
#   make deb-lint      run lintian on the built package
#   make install       PREFIX=/usr/local DESTDIR= : the program, units, man page and completion

PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
DEB_BUILD ?= build/deb
DIST ?= dist
# Debian builds use Debian's python3, whatever python3 comes first in PATH.
DEB_PATH := /usr/sbin:/usr/bin:/sbin:/bin
DEB_VERSION ?= $(shell $(PYTHON) packaging/debversion.py)

SYSTEM_DEPS := systemd-container debootstrap zstd debian-archive-keyring dpkg-dev debhelper dh-python \
	pybuild-plugin-pyproject python3-all python3-setuptools fakeroot

.PHONY: system-deps deb deb-lint install
check: system-deps

system-deps:
	@mk/apt-install $(SYSTEM_DEPS)

deb: system-deps
	rm -rf $(DEB_BUILD) && mkdir -p $(DEB_BUILD)/src $(DIST)
	packaging/source-files | grep -zv '^packaging/debian/' \
		| xargs -0 sh -c 'for f; do [ -f "$$f" ] && printf "%s\0" "$$f"; done' sh \
		| xargs -0 cp --parents -t $(DEB_BUILD)/src
	cp -r packaging/debian $(DEB_BUILD)/src/debian
	$(PYTHON) packaging/debversion.py changelog $(DEB_VERSION) > $(DEB_BUILD)/src/debian/changelog
	cd $(DEB_BUILD)/src && env PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b -rfakeroot >../build.log 2>&1 \
		|| { tail -40 ../build.log; exit 1; }
	cp $(DEB_BUILD)/after_$(DEB_VERSION)_all.deb $(DIST)/
	@echo $(DIST)/after_$(DEB_VERSION)_all.deb

deb-lint: deb
	@mk/apt-install lintian
	lintian --info --display-info --pedantic $(DEB_BUILD)/after_$(DEB_VERSION)_*.changes || true

install:
	$(PYTHON) -m pip install --no-deps --prefix=$(PREFIX) $(if $(DESTDIR),--root=$(DESTDIR)) .
	for unit in after@.service after.service after-metrics.service after-metrics.timer; do \
		sed 's#/usr/bin/after #$(PREFIX)/bin/after #' systemd/$$unit \
		| install -Dm644 /dev/stdin $(DESTDIR)$(UNITDIR)/$$unit || exit 1; done
	install -Dm644 systemd/after.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/after.conf
	install -Dm644 doc/after.1 $(DESTDIR)$(PREFIX)/share/man/man1/after.1
	install -Dm644 completion/bash/after $(DESTDIR)$(PREFIX)/share/bash-completion/completions/after
	install -Dm644 completion/zsh/_after $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_after
	install -Dm644 completion/fish/after.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/after.fish
	install -d $(DESTDIR)$(SYSCONFDIR)/after/jobs.d
	[ -e $(DESTDIR)$(SYSCONFDIR)/after/after.toml ] \
		|| install -m644 packaging/after.toml $(DESTDIR)$(SYSCONFDIR)/after/after.toml
	@echo "installed; then as root: systemd-sysusers && systemctl daemon-reload && after init && after start NAME"

# Makefile -- build and install portsentry like a native package.
#
#   make                      cargo build --release --locked
#   make install              install what target/release/portsentry and the
#                             tree hold (never builds); as root
#   make uninstall            remove it again, except the configuration
#   make deb                  build, then target/portsentry-rs_VERSION-1_ARCH.deb
#                             (contrib/debian/build-deb; needs dpkg-deb)
#   make install-port         what the pkgsrc and FreeBSD ports install: the
#                             binary, the man pages, the example configuration
#                             as EXAMPLESDIR/portsentry.conf$(SAMPLESUFFIX) and
#                             portsentry.ignore$(SAMPLESUFFIX), and with
#                             NEWSYSLOGDIR set, contrib/newsyslog/portsentry.conf
#                             there (CI checks it against both package lists)
#
# Variables (on the command line, e.g. "make install DESTDIR=/tmp/root PREFIX=/usr"):
#   DESTDIR         staging root, prepended to every path below (default: empty)
#   PREFIX          /usr/local
#   SYSCONFDIR      /etc  (the configuration goes into SYSCONFDIR/portsentry)
#   SBINDIR         PREFIX/sbin
#   MANDIR          PREFIX/share/man
#   DOCDIR          PREFIX/share/doc/portsentry (README.md, LICENSE, docs/*.md
#                   as DOCDIR/docs/, the examples as DOCDIR/examples/)
#   LIBEXECDIR      PREFIX/lib/portsentry (portsentry-legacy-start)
#   SYSTEMDUNITDIR  PREFIX/lib/systemd/system
#   COMPLETIONSDIR  PREFIX/share (bash-completion/completions, zsh/vendor-completions,
#                   fish/vendor_completions.d)
#   BINARY          the binary to install: target/release/portsentry (under
#                   CARGO_TARGET_DIR instead of target/ when that is set)
#
# portsentry.conf and portsentry.ignore are installed only if absent: an
# admin's files are never overwritten (the new examples always go to
# DOCDIR/examples).  The systemd units and the 1.2-mode wrapper name the
# installed paths (SBINDIR, LIBEXECDIR, SYSCONFDIR) as they are copied.
# Only GNU make and POSIX tools (install -d/-m, sed, cmp) are used.

PREFIX         = /usr/local
SYSCONFDIR     = /etc
SBINDIR        = $(PREFIX)/sbin
MANDIR         = $(PREFIX)/share/man
COMPLETIONSDIR = $(PREFIX)/share
DOCDIR         = $(PREFIX)/share/doc/portsentry
LIBEXECDIR     = $(PREFIX)/lib/portsentry
SYSTEMDUNITDIR = $(PREFIX)/lib/systemd/system
CONFDIR        = $(SYSCONFDIR)/portsentry
# cargo builds into CARGO_TARGET_DIR when that is set
BINARY         = $(or $(CARGO_TARGET_DIR),target)/release/portsentry
EXAMPLESDIR    = $(PREFIX)/share/examples/portsentry
SAMPLESUFFIX   =
NEWSYSLOGDIR   =
DESTDIR        =

CARGO   = cargo
INSTALL = install
SED     = sed

UNITS = portsentry.service portsentry-reapply.service portsentry-legacy@.service
DOCS  = README.md LICENSE
DESIGNDOCS = $(sort $(wildcard docs/*.md))

# The paths the units and the wrapper are written with, and what they become.
SUBST = $(SED) \
	-e 's|/usr/sbin/portsentry|$(SBINDIR)/portsentry|g' \
	-e 's|/usr/lib/portsentry/portsentry-legacy-start|$(LIBEXECDIR)/portsentry-legacy-start|g' \
	-e 's|/etc/portsentry/|$(CONFDIR)/|g'

.PHONY: all build deb install install-port uninstall install-bin install-man install-conf \
	install-systemd install-doc install-completions

all: build

build:
	$(CARGO) build --release --locked

deb: build
	sh contrib/debian/build-deb $(BINARY)

$(BINARY):
	@echo "make: $(BINARY) does not exist: run \"make build\" first" \
		"(cargo build --release --locked), or pass BINARY=path/to/portsentry." >&2
	@exit 1

install: install-bin install-man install-conf install-systemd install-doc install-completions

install-bin: $(BINARY)
	$(INSTALL) -d -m 0755 '$(DESTDIR)$(SBINDIR)'
	$(INSTALL) -m 0755 '$(BINARY)' '$(DESTDIR)$(SBINDIR)/portsentry'

install-port: install-bin install-man
	$(INSTALL) -d -m 0755 '$(DESTDIR)$(EXAMPLESDIR)'
	$(INSTALL) -m 0644 portsentry.conf.example '$(DESTDIR)$(EXAMPLESDIR)/portsentry.conf$(SAMPLESUFFIX)'
	$(INSTALL) -m 0644 portsentry.ignore.example '$(DESTDIR)$(EXAMPLESDIR)/portsentry.ignore$(SAMPLESUFFIX)'
	@if [ -n '$(NEWSYSLOGDIR)' ]; then \
		$(INSTALL) -d -m 0755 '$(DESTDIR)$(NEWSYSLOGDIR)' && \
		$(INSTALL) -m 0644 contrib/newsyslog/portsentry.conf '$(DESTDIR)$(NEWSYSLOGDIR)/portsentry.conf'; \
	fi

install-man:
	$(INSTALL) -d -m 0755 '$(DESTDIR)$(MANDIR)/man5' '$(DESTDIR)$(MANDIR)/man8'
	$(INSTALL) -m 0644 man/portsentry.8 '$(DESTDIR)$(MANDIR)/man8/portsentry.8'
	$(INSTALL) -m 0644 man/portsentry.conf.5 '$(DESTDIR)$(MANDIR)/man5/portsentry.conf.5'

# Never overwrite: the admin's configuration stays as it is.
install-conf:
	$(INSTALL) -d -m 0755 '$(DESTDIR)$(CONFDIR)'
	@if [ -e '$(DESTDIR)$(CONFDIR)/portsentry.conf' ]; then \
		echo "keeping $(DESTDIR)$(CONFDIR)/portsentry.conf (the new example is in $(DOCDIR)/examples)"; \
	else \
		echo "installing $(DESTDIR)$(CONFDIR)/portsentry.conf"; \
		$(SUBST) portsentry.conf.example > '$(DESTDIR)$(CONFDIR)/portsentry.conf.new' && \
		chmod 0600 '$(DESTDIR)$(CONFDIR)/portsentry.conf.new' && \
		mv '$(DESTDIR)$(CONFDIR)/portsentry.conf.new' '$(DESTDIR)$(CONFDIR)/portsentry.conf'; \
	fi
	@if [ -e '$(DESTDIR)$(CONFDIR)/portsentry.ignore' ]; then \
		echo "keeping $(DESTDIR)$(CONFDIR)/portsentry.ignore"; \
	else \
		echo "installing $(DESTDIR)$(CONFDIR)/portsentry.ignore"; \
		$(INSTALL) -m 0644 portsentry.ignore.example '$(DESTDIR)$(CONFDIR)/portsentry.ignore'; \
	fi

install-systemd:
	$(INSTALL) -d -m 0755 '$(DESTDIR)$(SYSTEMDUNITDIR)' '$(DESTDIR)$(LIBEXECDIR)'
	@set -e; for u in $(UNITS); do \
		echo "installing $(DESTDIR)$(SYSTEMDUNITDIR)/$$u"; \
		$(SUBST) "contrib/systemd/$$u" > '$(DESTDIR)$(SYSTEMDUNITDIR)/'"$$u"; \
		chmod 0644 '$(DESTDIR)$(SYSTEMDUNITDIR)/'"$$u"; \
	done
	$(SUBST) contrib/systemd/portsentry-legacy-start > '$(DESTDIR)$(LIBEXECDIR)/portsentry-legacy-start'
	chmod 0755 '$(DESTDIR)$(LIBEXECDIR)/portsentry-legacy-start'

# Shell completions, written by the binary from its own command-line definition
# (skipped, with a note, when the binary cannot run here, e.g. cross-built).
install-completions: $(BINARY)
	@if '$(BINARY)' completions bash >/dev/null 2>&1; then \
		$(INSTALL) -d -m 0755 '$(DESTDIR)$(COMPLETIONSDIR)/bash-completion/completions' \
			'$(DESTDIR)$(COMPLETIONSDIR)/zsh/vendor-completions' \
			'$(DESTDIR)$(COMPLETIONSDIR)/fish/vendor_completions.d' && \
		'$(BINARY)' completions bash > '$(DESTDIR)$(COMPLETIONSDIR)/bash-completion/completions/portsentry' && \
		'$(BINARY)' completions zsh > '$(DESTDIR)$(COMPLETIONSDIR)/zsh/vendor-completions/_portsentry' && \
		'$(BINARY)' completions fish > '$(DESTDIR)$(COMPLETIONSDIR)/fish/vendor_completions.d/portsentry.fish' && \
		echo "installed bash, zsh and fish completions under $(DESTDIR)$(COMPLETIONSDIR)"; \
	else \
		echo "skipping shell completions: $(BINARY) cannot run here"; \
	fi

install-doc:
	$(INSTALL) -d -m 0755 '$(DESTDIR)$(DOCDIR)' '$(DESTDIR)$(DOCDIR)/docs' '$(DESTDIR)$(DOCDIR)/examples'
	$(INSTALL) -m 0644 $(DOCS) '$(DESTDIR)$(DOCDIR)/'
	$(INSTALL) -m 0644 $(DESIGNDOCS) '$(DESTDIR)$(DOCDIR)/docs/'
	$(INSTALL) -m 0644 portsentry.conf.example '$(DESTDIR)$(DOCDIR)/examples/portsentry.conf'
	$(INSTALL) -m 0644 portsentry.ignore.example '$(DESTDIR)$(DOCDIR)/examples/portsentry.ignore'
	$(INSTALL) -m 0644 contrib/systemd/portsentry.default '$(DESTDIR)$(DOCDIR)/examples/default.portsentry'

# Everything "install" put there, except the configuration in CONFDIR.
uninstall:
	rm -f '$(DESTDIR)$(SBINDIR)/portsentry'
	rm -f '$(DESTDIR)$(MANDIR)/man8/portsentry.8' '$(DESTDIR)$(MANDIR)/man5/portsentry.conf.5'
	@set -e; for u in $(UNITS); do \
		echo "rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/$$u"; \
		rm -f '$(DESTDIR)$(SYSTEMDUNITDIR)/'"$$u"; \
	done
	rm -f '$(DESTDIR)$(LIBEXECDIR)/portsentry-legacy-start'
	rm -f '$(DESTDIR)$(COMPLETIONSDIR)/bash-completion/completions/portsentry' \
		'$(DESTDIR)$(COMPLETIONSDIR)/zsh/vendor-completions/_portsentry' \
		'$(DESTDIR)$(COMPLETIONSDIR)/fish/vendor_completions.d/portsentry.fish'
	rmdir '$(DESTDIR)$(LIBEXECDIR)' 2>/dev/null || true
	@set -e; for f in $(DOCS) $(DESIGNDOCS); do \
		echo "rm -f $(DESTDIR)$(DOCDIR)/$$f"; \
		rm -f '$(DESTDIR)$(DOCDIR)/'"$$f"; \
	done
	rm -f '$(DESTDIR)$(DOCDIR)/examples/portsentry.conf' \
		'$(DESTDIR)$(DOCDIR)/examples/portsentry.ignore' \
		'$(DESTDIR)$(DOCDIR)/examples/default.portsentry'
	rmdir '$(DESTDIR)$(DOCDIR)/docs' '$(DESTDIR)$(DOCDIR)/examples' '$(DESTDIR)$(DOCDIR)' 2>/dev/null || true
	@echo "kept $(DESTDIR)$(CONFDIR) (configuration) and /var/lib/portsentry (block store); remove them by hand if wanted"

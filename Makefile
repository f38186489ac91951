# ringcast: one plain Makefile. Everything lands in $(BUILD) (build/ by default,
# build/san with SAN=1, build/tsan with TSAN=1). `make V=1` shows the commands.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
CFLAGS  ?= -O2 -g
LDFLAGS ?=

override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -MMD -MP -D_GNU_SOURCE -I. -pthread
LIBS := -luring -lz -lssl -lcrypto -linih -lpthread
# The broker's Redis engine only (broker/redis_conn.c): not in libringcast.
BROKER_LIBS := -lhiredis

BUILD := build
ifeq ($(SAN),1)
BUILD := build/san
override CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=address,undefined
export LSAN_OPTIONS := suppressions=$(CURDIR)/tests/lsan.supp
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
endif
# ThreadSanitizer: every report is written under $(BUILD)/tsan-reports, and
# `make TSAN=1 test` fails if any process wrote one (a broker a test killed
# still leaves its file).  Suppressions only for third-party code: see
# tests/tsan.supp.
ifeq ($(TSAN),1)
BUILD := build/tsan
override CFLAGS += -fsanitize=thread -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=thread
export TSAN_OPTIONS := suppressions=$(CURDIR)/tests/tsan.supp:second_deadlock_stack=1:log_path=$(CURDIR)/$(BUILD)/tsan-reports/report
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Debian packages, in two sets.  `make deps` (run before every build) checks
# only what building and running needs; `make test-deps` (pulled by `make
# test`, the unit tests and `make fuzz`) adds the test peers and tools:
# Criterion, clang for libFuzzer, promtool, Chromium, Node.js...
DEB_PKGS      := gcc make pkg-config liburing-dev zlib1g-dev libssl-dev libjsmn-dev \
	libinih-dev libhiredis-dev
DEB_TEST_PKGS := libcriterion-dev clang libclang-rt-14-dev openssl curl python3 \
	python3-websockets microsocks chromium prometheus python3-jwt \
	python3-cryptography redis-tools
# deploy/: the local cluster (HAProxy, Redis), the container image (podman,
# buildah, runc, a static busybox for its health check), the Debian package
# (dpkg-dev, lintian) and the Helm/Kubernetes render check (Go with sprig,
# the template library Helm renders with; python3-yaml).
DEB_TEST_PKGS += haproxy redis-server podman buildah runc busybox-static dpkg-dev \
	lintian groff-base python3-yaml golang-go golang-github-masterminds-sprig-dev \
	golang-gopkg-yaml.v3-dev

PROTO_SRCS := $(wildcard proto/*.c)
CORE_SRCS  := $(wildcard core/*.c)
# clients/c: the pub/sub client library (libringcast) and the CLI tools
# clients/c/ringcast-NAME.c -> build/ringcast-NAME.
CLI_SRCS    := $(wildcard clients/c/ringcast-*.c)
CLIENT_SRCS := $(filter-out $(CLI_SRCS),$(wildcard clients/c/*.c))
# Two libraries: libringcast-core (proto/ and core/: all the broker links)
# and libringcast (the pub/sub client, on top of it).  The shared
# libringcast.so needs libringcast-core.so; the static libringcast.a holds
# both, so a static link takes one archive.
LIB_SRCS   := $(PROTO_SRCS) $(CORE_SRCS)
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB        := $(BUILD)/libringcast-core.a
CLIENT_OBJS := $(CLIENT_SRCS:%.c=$(BUILD)/%.o)
CLIENT_LIB  := $(BUILD)/libringcast.a
# The shared libraries beside them: soname libNAME.so.MAJOR.
VERSION    := $(shell sed -n 's/.*RINGCAST_VERSION "\(.*\)".*/\1/p' broker/config.h)
SOMAJOR    := $(firstword $(subst ., ,$(VERSION)))
SOLIB      := $(BUILD)/libringcast-core.so.$(VERSION)
CLIENT_SOLIB := $(BUILD)/libringcast.so.$(VERSION)

BROKER_SRCS := $(wildcard broker/*.c)
BROKER_OBJS := $(BROKER_SRCS:%.c=$(BUILD)/%.o)
# The demo page and browser client, embedded in the binary: every file of
# clients/js/www/ at /NAME (index.html also at /), and clients/js/*.js.
WWW_FILES := $(wildcard clients/js/www/*) $(wildcard clients/js/*.js) $(wildcard clients/js/*.d.ts)
WWW_ARGS  := $(foreach f,$(WWW_FILES),$(f)=/$(notdir $(f))) \
	$(if $(wildcard clients/js/www/index.html),clients/js/www/index.html=/)
BROKER_OBJS += $(BUILD)/gen/www.o
# Everything but main(): the unit tests link it too.
BROKER_LIB_OBJS := $(filter-out $(BUILD)/broker/main.o,$(BROKER_OBJS))

EXAMPLES := $(patsubst core/examples/%.c,$(BUILD)/%,$(wildcard core/examples/*.c))

UNIT_SRCS := $(wildcard tests/*/test_*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
UNIT_BIN  := $(BUILD)/tests/unit

MICRO_SRCS := $(wildcard bench/micro/*.c)
MICRO_BIN  := $(BUILD)/bench-micro

# bench/rcbench/*.c -> build/ringcast-bench; bench/progs/NAME.c -> build/NAME
RCBENCH_SRCS := $(wildcard bench/rcbench/*.c)
BENCH_PROGS  := $(patsubst bench/progs/%.c,$(BUILD)/%,$(wildcard bench/progs/*.c))
CLI_BINS     := $(patsubst clients/c/%.c,$(BUILD)/%,$(CLI_SRCS))

PROGRAMS := $(if $(BROKER_SRCS),$(BUILD)/ringcast) $(EXAMPLES) $(CLI_BINS) \
	$(if $(RCBENCH_SRCS),$(BUILD)/ringcast-bench)
TOOLS    := $(if $(MICRO_SRCS),$(MICRO_BIN)) $(BENCH_PROGS)

.PHONY: all deps test-deps test test-epoll unit integration run fuzz install uninstall clean FORCE \
	image image-test deb deb-test k8s-manifests
# Keep intermediate objects (examples, CLI tools) so nothing relinks needlessly.
.SECONDARY:
all: $(LIB) $(SOLIB) $(CLIENT_LIB) $(CLIENT_SOLIB) $(PROGRAMS) $(TOOLS)

# Checks Debian packages ($(1); $(2) may add names to $$missing); as root
# installs what is missing, otherwise prints the one command to run.  Cheap
# enough to run before every build; lists what it checked only when asked
# for by name (`make deps`, `make test-deps`).
define ensure_pkgs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; $(2) \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "$@: installing$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q $$missing >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; } || \
	      { echo "$@: apt-get install failed for:$$missing" >&2; exit 1; }; \
	  else \
	    echo "$@: missing packages; run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	elif [ -n "$(filter $@,$(MAKECMDGOALS))" ]; then \
	  echo "$@: installed: $(strip $(1))"; \
	fi
endef

deps:
	$(call ensure_pkgs,$(DEB_PKGS))

# Node.js may come from elsewhere than Debian (NodeSource): any node and npm do.
test-deps: deps
	$(call ensure_pkgs,$(DEB_TEST_PKGS),command -v node >/dev/null && command -v npm >/dev/null || missing="$$missing nodejs npm";)

$(LIB_OBJS) $(CLIENT_OBJS) $(BROKER_OBJS) $(RCBENCH_SRCS:%.c=$(BUILD)/%.o) \
	$(CLI_SRCS:%.c=$(BUILD)/%.o): | deps
$(UNIT_OBJS): | test-deps

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tools/embed: broker/tools/embed.c
	@mkdir -p $(@D)
	$(Q)$(CC) -O1 -o $@ $<

$(BUILD)/gen/www.c: $(BUILD)/tools/embed $(WWW_FILES) Makefile
	@mkdir -p $(@D)
	@$(if $(Q),echo "  EMBED   $@")
	$(Q)$(BUILD)/tools/embed $@ $(WWW_ARGS)

$(BUILD)/gen/www.o: $(BUILD)/gen/www.c
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -Wno-overlength-strings -c -o $@ $<

# The library's objects serve both the static and the shared library:
# position-independent, without semantic interposition so calls inside the
# library still inline and bind directly.
# build/lib.flags records those flags, so objects built without them (an
# older tree) are rebuilt once instead of failing the shared link.
$(LIB_OBJS) $(CLIENT_OBJS): override CFLAGS += -fPIC -fno-semantic-interposition
$(LIB_OBJS) $(CLIENT_OBJS): $(BUILD)/lib.flags
$(BUILD)/lib.flags: FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(CFLAGS) -fPIC -fno-semantic-interposition' | cmp -s - $@ || \
		echo '$(CC) $(CFLAGS) -fPIC -fno-semantic-interposition' > $@
FORCE:

$(LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(SOLIB): $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libringcast-core.so.$(SOMAJOR) -o $@ $^ $(LIBS)

$(CLIENT_LIB): $(CLIENT_OBJS) $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# Linked against the core's shared library by path: NEEDED libringcast-core.so.MAJOR.
$(CLIENT_SOLIB): $(CLIENT_OBJS) $(SOLIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libringcast.so.$(SOMAJOR) -o $@ $^ $(LIBS)

$(BUILD)/ringcast: $(BROKER_OBJS) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(BROKER_LIBS) $(LIBS)

$(BUILD)/%: $(BUILD)/core/examples/%.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/ringcast-bench: $(RCBENCH_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

$(BUILD)/ringcast-%: $(BUILD)/clients/c/ringcast-%.o $(CLIENT_LIB) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BENCH_PROGS): $(BUILD)/%: $(BUILD)/bench/progs/%.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

$(MICRO_BIN): $(MICRO_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(UNIT_BIN): $(UNIT_OBJS) $(BROKER_LIB_OBJS) $(CLIENT_LIB) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcriterion $(BROKER_LIBS) $(LIBS)

# core/'s layering (tests/core/check_layers.py: every cross-file call in
# core/'s objects goes down core/README.md's layer picture), the unit tests
# (Criterion prints its own synthesis line), then the integration tests that
# start real programs and third-party peers.
CHECK_LAYERS = $(Q)/usr/bin/python3 tests/core/check_layers.py $(BUILD) >/dev/null
ifneq ($(TSAN),1)
test: test-deps all $(UNIT_BIN)
	$(CHECK_LAYERS)
	$(Q)$(UNIT_BIN) --jobs 2
	$(Q)BUILD=$(BUILD) tests/integration/run
else
# Under ThreadSanitizer (5-15x slower): the integration tests that run
# several loops at once, drain on SIGTERM and reload on SIGHUP under load;
# then no report may have been written.  Not the Criterion unit tests:
# Criterion aborts under TSan at start ("Could not initialize inheritable
# arena", Snaipe/Criterion#274: its arena is mapped at fixed addresses that
# TSan's shadow memory occupies).
TSAN_TESTS := test_broker_lifecycle.py test_broker_load.py test_broker_pubsub.py \
	test_broker_reload.py test_broker_connz.py test_broker_drain.py \
	test_redis.py test_redis_failover.py
test: test-deps all
	$(Q)rm -rf $(BUILD)/tsan-reports && mkdir -p $(BUILD)/tsan-reports
	$(Q)BUILD=$(BUILD) tests/integration/run $(TSAN_TESTS)
	$(Q)if ls $(BUILD)/tsan-reports | grep -q .; then \
	  cat $(BUILD)/tsan-reports/* | head -n 200; \
	  echo "tsan: reports in $(BUILD)/tsan-reports" >&2; exit 1; fi
endif

unit: $(UNIT_BIN)
	$(CHECK_LAYERS)
	$(Q)$(UNIT_BIN) --jobs 2

# The same unit and integration tests on the epoll loop backend (what runs
# where seccomp blocks io_uring): RINGCAST_IO_BACKEND reaches the broker's
# config and every loop the tests, clients and tools create.
test-epoll: test-deps all $(UNIT_BIN)
	$(Q)RINGCAST_IO_BACKEND=epoll $(UNIT_BIN) --jobs 2
	$(Q)RINGCAST_IO_BACKEND=epoll BUILD=$(BUILD) tests/integration/run

integration: test-deps all
	$(Q)BUILD=$(BUILD) tests/integration/run

# `make run PORT=9000` listens on 127.0.0.1:9000 instead of 127.0.0.1:8080;
# RINGCAST_LISTEN=HOST:PORT (or any RINGCAST_* variable) works as well.
run: all
	$(BUILD)/ringcast $(if $(PORT),--listen 127.0.0.1:$(PORT))

# libFuzzer harnesses: tests/fuzz/fuzz_NAME.c, built with clang against the
# proto and core sources (a harness links what it uses; core harnesses run a
# real loop in-process), each run for FUZZ_SECONDS from a scratch copy of its
# corpus, with tests/fuzz/NAME.dict when there is one.
FUZZ_SECONDS ?= 30
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -D_GNU_SOURCE -I. -pthread -fno-sanitize-recover=all
FUZZ_SAN     := address,undefined
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)
# proto/ and core/ are compiled once for every harness (instrumented for
# coverage, not linked with libFuzzer's main).
FUZZ_OBJS    := $(PROTO_SRCS:%.c=build/fuzz/obj/%.o) $(CORE_SRCS:%.c=build/fuzz/obj/%.o) build/fuzz/obj/broker/redis_proto.o

build/fuzz/obj/%.o: %.c | test-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -MMD -MP -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) | test-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) -MMD -MP -o $@ $< $(FUZZ_OBJS) $(LIBS)

fuzz: $(FUZZ_BINS)
	$(Q)set -e; for n in $(FUZZ_NAMES); do \
	  rm -rf build/fuzz/corpus-$$n; mkdir -p build/fuzz/corpus-$$n; \
	  if [ -d tests/fuzz/corpus/$$n ]; then cp tests/fuzz/corpus/$$n/* build/fuzz/corpus-$$n/ 2>/dev/null || true; fi; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  dict=; [ -f tests/fuzz/$$n.dict ] && dict=-dict=tests/fuzz/$$n.dict; \
	  build/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 $$dict \
	    -artifact_prefix=build/fuzz/crash-$$n- build/fuzz/corpus-$$n 2>build/fuzz/$$n.log || \
	    { tail -n 40 build/fuzz/$$n.log; exit 1; }; \
	  grep -E '^#[0-9]+.*DONE' build/fuzz/$$n.log | tail -n 1; \
	done

# `make install` puts exactly these under $(DESTDIR)$(PREFIX) (README.md
# lists them; tests/integration/test_install.py checks both): the programs
# (not the core's echo examples, which stay in build/), both libraries (core
# and pub/sub client, static and shared), the public headers only under
# include/ringcast/ (<ringcast/rc.h>, <ringcast/client.h> and the wire types
# rc.h shows, <ringcast/proto/types.h>) and a pkg-config file.
INSTALL_BINS := $(filter-out $(EXAMPLES),$(PROGRAMS))
PUBLIC_PROTO_HEADERS := proto/types.h
# The headers' own "core/..." and "proto/..." includes become <ringcast/...>.
HEADER_SED := -e 's|^\#include "core/rc.h"|\#include <ringcast/rc.h>|' \
	-e 's|^\#include "proto/\([a-z_0-9]*\.h\)"|\#include <ringcast/proto/\1>|'
I := $(DESTDIR)$(PREFIX)

install: all
	install -d $(I)/bin $(I)/lib/pkgconfig $(I)/include/ringcast/proto
	install -m 755 $(INSTALL_BINS) $(I)/bin/
	install -m 644 $(LIB) $(CLIENT_LIB) $(I)/lib/
	install -m 755 $(SOLIB) $(CLIENT_SOLIB) $(I)/lib/
	for l in libringcast libringcast-core; do \
	  ln -sf $$l.so.$(VERSION) $(I)/lib/$$l.so.$(SOMAJOR); \
	  ln -sf $$l.so.$(SOMAJOR) $(I)/lib/$$l.so; done
	sed $(HEADER_SED) core/rc.h > $(I)/include/ringcast/rc.h
	sed $(HEADER_SED) clients/c/ringcast_client.h > $(I)/include/ringcast/client.h
	for h in $(PUBLIC_PROTO_HEADERS); do sed $(HEADER_SED) $$h > $(I)/include/ringcast/$$h; done
	chmod 644 $(I)/include/ringcast/*.h $(I)/include/ringcast/proto/*.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
		clients/c/ringcast.pc.in > $(I)/lib/pkgconfig/ringcast.pc
	chmod 644 $(I)/lib/pkgconfig/ringcast.pc

# Removes what install put there (and the folders it made, when empty).
uninstall:
	rm -f $(addprefix $(I)/bin/,$(notdir $(INSTALL_BINS))) \
		$(I)/lib/libringcast.a $(I)/lib/libringcast.so.$(VERSION) \
		$(I)/lib/libringcast.so.$(SOMAJOR) $(I)/lib/libringcast.so \
		$(I)/lib/libringcast-core.a $(I)/lib/libringcast-core.so.$(VERSION) \
		$(I)/lib/libringcast-core.so.$(SOMAJOR) $(I)/lib/libringcast-core.so \
		$(I)/lib/pkgconfig/ringcast.pc $(I)/include/ringcast/rc.h \
		$(I)/include/ringcast/client.h $(addprefix $(I)/include/ringcast/,$(PUBLIC_PROTO_HEADERS))
	-rmdir $(I)/include/ringcast/proto $(I)/include/ringcast 2>/dev/null

# deploy/: the Debian package and the runtime container image, and the slow
# deployment tests kept out of `make test` (.ci/run calls both): deb-test
# installs the .deb, starts and purges it; image-test builds the image and
# runs it with podman.
#
# `make deb`: build/ringcast_VERSION_ARCH.deb (deploy/deb/build.sh), from
# programs compiled apart in build/deb-bin with Debian's hardening flags
# (dpkg-buildflags, plus bindnow), then checked by lintian when installed.
DEB_BIN := build/deb-bin
deb: deps
	$(call ensure_pkgs,dpkg-dev)
	$(Q)$(MAKE) --no-print-directory BUILD=$(DEB_BIN) \
		CFLAGS="$$(dpkg-buildflags --get CPPFLAGS) $$(dpkg-buildflags --get CFLAGS)" \
		LDFLAGS="$$(DEB_BUILD_MAINT_OPTIONS=hardening=+bindnow dpkg-buildflags --get LDFLAGS)" \
		$(addprefix $(DEB_BIN)/,ringcast ringcast-pub ringcast-sub ringcast-bench)
	$(Q)deploy/deb/build.sh $(DEB_BIN)

deb-test: test-deps deb
	$(Q)BUILD=$(BUILD) tests/integration/run ../deploy/test_deb.py

# The chart renderer for machines without Helm (tests/deploy/helmrender: Go's
# text/template and sprig, as Helm; built from Debian's Go packages, offline),
# and the plain manifests in deploy/k8s/ generated from the chart.
$(BUILD)/helmrender: tests/deploy/helmrender/main.go | test-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  GO      $@")
	$(Q)cd tests/deploy/helmrender && GO111MODULE=off GOPATH=/usr/share/gocode \
		GOCACHE=$(CURDIR)/build/gocache go build -o $(CURDIR)/$@ .

k8s-manifests: $(BUILD)/helmrender
	deploy/k8s/generate.sh $(BUILD)/helmrender

# `make image`: localhost/ringcast:VERSION built with podman without pulling
# anything (deploy/image/build.sh; PODMAN_OPTS for podman's global options).
image: $(BUILD)/ringcast
	deploy/image/build.sh $(BUILD)/ringcast

image-test: test-deps all
	$(Q)BUILD=$(BUILD) tests/integration/run ../deploy/test_image.py

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

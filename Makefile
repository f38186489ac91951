# ringcast: one plain Makefile. Everything lands in $(BUILD) (build/ by default,
# build/san with SAN=1). `make V=1` shows the commands.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
CFLAGS  ?= -O2 -g
LDFLAGS ?=

override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -MMD -MP -D_GNU_SOURCE -I. -pthread
LIBS := -luring -lz -lssl -lcrypto -linih -lpthread

BUILD := build
ifeq ($(SAN),1)
BUILD := build/san
override CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=address,undefined
export LSAN_OPTIONS := suppressions=$(CURDIR)/tests/lsan.supp
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Debian packages the build, the tests and the fuzzers need (see `make deps`).
DEB_PKGS := gcc make pkg-config liburing-dev zlib1g-dev libssl-dev libjsmn-dev \
	libinih-dev libcriterion-dev clang libclang-rt-14-dev openssl curl \
	python3 python3-websockets microsocks chromium
DEB_PKGS += python3-jwt python3-cryptography

PROTO_SRCS := $(wildcard proto/*.c)
CORE_SRCS  := $(wildcard core/*.c)
# clients/c: the pub/sub client library (in libringcast) and the CLI tools
# clients/c/ringcast-NAME.c -> build/ringcast-NAME.
CLI_SRCS    := $(wildcard clients/c/ringcast-*.c)
CLIENT_SRCS := $(filter-out $(CLI_SRCS),$(wildcard clients/c/*.c))
LIB_SRCS   := $(PROTO_SRCS) $(CORE_SRCS) $(CLIENT_SRCS)
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB        := $(BUILD)/libringcast.a

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

.PHONY: all deps test unit integration run fuzz install clean
# Keep intermediate objects (examples, CLI tools) so nothing relinks needlessly.
.SECONDARY:
all: $(LIB) $(PROGRAMS) $(TOOLS)

# Checks the Debian packages; as root installs what is missing, otherwise
# prints the one command to run. Cheap enough to run before every build.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	command -v node >/dev/null && command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q $$missing >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; } || \
	      { echo "deps: apt-get install failed for:$$missing" >&2; exit 1; }; \
	  else \
	    echo "deps: missing packages; run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

$(LIB_OBJS) $(BROKER_OBJS) $(UNIT_OBJS) $(RCBENCH_SRCS:%.c=$(BUILD)/%.o) \
	$(CLI_SRCS:%.c=$(BUILD)/%.o): | deps

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

$(LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/ringcast: $(BROKER_OBJS) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/%: $(BUILD)/core/examples/%.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/ringcast-bench: $(RCBENCH_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

$(BUILD)/ringcast-%: $(BUILD)/clients/c/ringcast-%.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BENCH_PROGS): $(BUILD)/%: $(BUILD)/bench/progs/%.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

$(MICRO_BIN): $(MICRO_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(UNIT_BIN): $(UNIT_OBJS) $(BROKER_LIB_OBJS) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcriterion $(LIBS)

# Unit tests first (Criterion prints its own synthesis line), then the
# integration tests that start real programs and third-party peers.
test: all $(UNIT_BIN)
	$(Q)$(UNIT_BIN) --jobs 2
	$(Q)BUILD=$(BUILD) tests/integration/run

unit: $(UNIT_BIN)
	$(Q)$(UNIT_BIN) --jobs 2

integration: all
	$(Q)BUILD=$(BUILD) tests/integration/run

run: all
	$(BUILD)/ringcast

# libFuzzer harnesses: tests/fuzz/fuzz_NAME.c, built with clang against the
# proto sources, each run for FUZZ_SECONDS from a scratch copy of its corpus.
FUZZ_SECONDS ?= 30
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(PROTO_SRCS) $(wildcard proto/*.h) | deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(PROTO_SRCS) -lz -lssl -lcrypto

fuzz: $(FUZZ_BINS)
	$(Q)set -e; for n in $(FUZZ_NAMES); do \
	  rm -rf build/fuzz/corpus-$$n; mkdir -p build/fuzz/corpus-$$n; \
	  if [ -d tests/fuzz/corpus/$$n ]; then cp tests/fuzz/corpus/$$n/* build/fuzz/corpus-$$n/ 2>/dev/null || true; fi; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  build/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
	    -artifact_prefix=build/fuzz/crash-$$n- build/fuzz/corpus-$$n 2>build/fuzz/$$n.log || \
	    { tail -n 40 build/fuzz/$$n.log; exit 1; }; \
	  grep -E '^#[0-9]+.*DONE' build/fuzz/$$n.log | tail -n 1; \
	done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/ringcast/core $(DESTDIR)$(PREFIX)/include/ringcast/proto \
		$(DESTDIR)$(PREFIX)/include/ringcast/clients/c
	install -m 755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 core/rc.h $(DESTDIR)$(PREFIX)/include/ringcast/core/
	install -m 644 proto/*.h $(DESTDIR)$(PREFIX)/include/ringcast/proto/
	install -m 644 clients/c/ringcast_client.h $(DESTDIR)$(PREFIX)/include/ringcast/clients/c/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e "s|@VERSION@|$$(sed -n 's/.*RINGCAST_VERSION \"\(.*\)\".*/\1/p' broker/*.h | head -n 1 | grep . || echo 0.1.0)|" \
		clients/c/ringcast.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ringcast.pc
	chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/ringcast.pc

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# kmipd build. `make` builds everything into build/, `make test` runs every test,
# `make run` starts kmipd. See README.md for the rest of the targets.

BUILD ?= build
# Dependencies built from source live outside $(BUILD) so that every variant (asan,
# fuzz) shares one copy and `make clean` keeps it.
DEPS := build/deps
CC ?= cc
PYTHON := /usr/bin/python3
FUZZ_SECONDS ?= 60

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wvla -Wformat=2 -Wundef -Wno-missing-field-initializers \
	-Wno-format-truncation
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 $(WARN) $(CFLAGS) -D_GNU_SOURCE -Iinclude -I$(DEPS)/include \
	-fno-strict-aliasing -fstack-protector-strong -D_FORTIFY_SOURCE=2 -MMD -MP
PKGS := libuv openssl libcurl lmdb msgpack jansson inih liblz4
# Expanded when a link runs, not when make starts: on a fresh machine pkg-config and the
# libraries arrive only with the dependency script, which runs first.
LIBS = $(DEPS)/lib/libraft.a $(shell pkg-config --libs $(PKGS) 2>/dev/null) \
	-lhttp_parser -lpthread -lm
TEST_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)

ifeq ($(SANITIZE),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRCS := $(sort $(wildcard src/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/libkmipd.a
PROGRAMS := $(patsubst src/%.c,$(BUILD)/%,$(wildcard src/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
DEPS_STAMP := $(DEPS)/.installed
FORMAT_FILES := $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null)

.SECONDARY:
.PHONY: all deps test unit integration asan fuzz bench run format format-check clean distclean
all: $(PROGRAMS) $(UNIT_TESTS) $(TOOLS) $(BENCHES)

# The dependency script is quick when everything is present; the stamp keeps it off the
# path of every incremental build.
$(DEPS_STAMP): scripts/deps.sh $(wildcard scripts/patches/raft/*.patch)
	@scripts/deps.sh --prefix $(abspath $(DEPS))
	@touch $@
deps: $(DEPS_STAMP)

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^

# Linked against libraft.a too, so a rebuilt (re-patched) libraft relinks everything.
RAFT_LIB := $(DEPS)/lib/libraft.a
$(RAFT_LIB): $(DEPS_STAMP)

$(BUILD)/%: $(BUILD)/obj/src/%.o $(LIB) $(RAFT_LIB)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB) $(RAFT_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(TEST_LIBS)

$(BUILD)/tests/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIB) $(RAFT_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB) $(RAFT_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

test: all format-check unit integration

unit: $(UNIT_TESTS) $(BUILD)/tests/tools/raft_version
	@$(BUILD)/tests/tools/raft_version
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

integration: all
	@test -d tests/integration || { echo 'no integration tests yet'; exit 0; }; \
	KMIPD_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -W ignore::DeprecationWarning -p no:cacheprovider tests/integration

# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(MAKE) BUILD=build/asan SANITIZE=1 CFLAGS="-O1 -g" test

# libFuzzer targets, each run for FUZZ_SECONDS; new corpus entries stay in build/fuzz.
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: | $(DEPS_STAMP)
	@set -e; mkdir -p build/fuzz; for t in $(FUZZ_TARGETS); do \
		echo "== building $$t"; \
		clang -std=c11 -g -O1 -D_GNU_SOURCE -Iinclude -I$(DEPS)/include \
			-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
			-o build/fuzz/$$t tests/fuzz/$$t.c $(LIB_SRCS) $(LIBS); \
		mkdir -p build/fuzz/corpus-$$t; \
		echo "== running $$t for $(FUZZ_SECONDS)s"; \
		build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-max_len=65536 build/fuzz/corpus-$$t tests/fuzz/corpus; \
	done

bench: $(BENCHES)
	@set -e; for b in $(BENCHES); do echo "== $$b"; $$b; done

# A 3-node dev cluster in the foreground on 127.0.0.1-3:5696, logs interleaved (data in
# build/dev, kept between runs; PKI in build/dev/pki). Ctrl-C stops it. See cluster/README.md.
DEV_DIR ?= build/dev
run: all
	@exec env KMIPD=$(abspath $(BUILD))/kmipd cluster/local.sh --dir $(DEV_DIR) foreground

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/tests $(BUILD)/bench $(BUILD)/fuzz $(BUILD)/asan \
		$(LIB) $(PROGRAMS)

distclean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The platform's build. Programs:
#   bin/es-broker     devstack/broker/      embedded dev broker (mock cluster + journal)
#   bin/esctl         producers/esctl/      CLI: send, replay, rebuild
#   bin/es-accounts   consumers/accounts/   accounts service
#   bin/es-transfers  consumers/transfers/  transfers service
#   bin/es-users      consumers/users/      users service (shop)
#   bin/es-catalog    consumers/catalog/    catalog and inventory service (shop)
#   bin/es-orders     consumers/orders/     orders service (shop)
#   bin/es-payments   consumers/payments/   payments service (shop)
#   bin/es-projector  projections/projector/ the ledger's read models in PostgreSQL
#   bin/es-shop-projector projections/shop/ the shop's read models in PostgreSQL
#   bin/es-query      projections/query/    HTTP query service
#   bin/es-sagas      saga-coordinator/     saga coordinator: timelines, deadlines, SagaTimedOut
# Everything shares lib/ (built once into build/libes.a) and schemas/ (embedded at build time).

PKGS      := rdkafka avro-c jansson libpq libevent
CC        ?= cc
OPT       ?= -O2
WARN      := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wvla -Werror
CFLAGS_ALL = -std=c17 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) -g $(WARN) $(SAN) \
             -Ilib -I$(B)/gen $(shell pkg-config --cflags $(PKGS)) -MMD -MP $(CFLAGS)
LDLIBS_ALL = $(shell pkg-config --libs $(PKGS)) -lpthread -lm -ldl $(LDLIBS)

B        ?= build
BIN      ?= bin

LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o) $(B)/gen/schemas_embedded.o
SCHEMAS  := $(shell find schemas -name '*.avsc' | sort)

PROGS := es-broker:devstack/broker esctl:producers/esctl es-accounts:consumers/accounts \
         es-transfers:consumers/transfers es-users:consumers/users es-catalog:consumers/catalog \
         es-orders:consumers/orders es-payments:consumers/payments es-projector:projections/projector \
         es-shop-projector:projections/shop es-query:projections/query \
         es-sagas:saga-coordinator \
         es-loadgen:bench
prog_name = $(word 1,$(subst :, ,$1))
prog_dir  = $(word 2,$(subst :, ,$1))
BINS := $(foreach p,$(PROGS),$(BIN)/$(call prog_name,$p))

UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o)
# Unit tests may exercise a program's pure domain files (domain_*.c); wiring stays out.
DOMAIN_SRC := $(wildcard consumers/*/domain*.c projections/*/domain*.c saga-coordinator/domain*.c \
              projections/query/timeline.c producers/esctl/saga_draw.c) projections/query/routes.c \
              projections/query/breaker.c projections/query/etag.c devstack/broker/chaos_req.c
DOMAIN_OBJ := $(DOMAIN_SRC:%.c=$(B)/%.o)

.PHONY: all test unit asan integration bench soak fmt fmt-check lint clean up down reset demo status deps
all: $(BINS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/gen/schemas_embedded.c: $(SCHEMAS) scripts/embed-schemas.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-schemas.sh schemas > $@.tmp && mv $@.tmp $@

$(B)/gen/schemas_embedded.o: $(B)/gen/schemas_embedded.c
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/libes.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

define prog_rule
$(BIN)/$(call prog_name,$1): $(patsubst %.c,$(B)/%.o,$(wildcard $(call prog_dir,$1)/*.c)) $(B)/libes.a
	@mkdir -p $(BIN)
	$$(CC) $$(SAN) -o $$@ $$^ $$(LDLIBS_ALL)
endef
$(foreach p,$(PROGS),$(eval $(call prog_rule,$p)))

$(BIN)/es-unit: $(UNIT_OBJ) $(DOMAIN_OBJ) $(B)/libes.a
	@mkdir -p $(BIN)
	$(CC) $(SAN) -o $@ $^ $(shell pkg-config --libs check) $(LDLIBS_ALL)

unit: $(BIN)/es-unit
	$(BIN)/es-unit

# The unit suite again under AddressSanitizer and UBSan, in its own build tree. In one process
# (CK_FORK=no): forked, every test's child ran LeakSanitizer over the whole inherited heap, and
# the suite took 230 s instead of 14; a leak anywhere is still reported when the process exits.
# Then every program built the same way: the dev broker under test_broker_longpoll,
# test_broker_fill and test_broker_restore (its socket-call wrappers, devstack/broker/longpoll.c,
# run inside librdkafka's mock, and fill.c and memjournal.c read the mock's message sets), and
# the whole stack under the tests of its edges (bad records, the CLI, HTTP), of the order
# saga, which runs every service, of two saga coordinators sharing the partitions, of a
# stopped instance's sessions ended and its reconnection, of every consumer's lag, and of each
# program logged in as its own database role (with a rebuild). A report in a program's log fails
# the test (tests/integration/lib.sh); leaks are reported when a program stops. `make test`
# does not run those tests a second time on the plain build (the same code, fewer checks):
# that took two minutes of its thirteen.
ASAN_TESTS := broker_longpoll broker_fill broker_restore dead_letters esctl query_http order_saga \
  sagas_split stalled_tx lag roles chaos
# The sanitizer build is made on every core (make test's own targets run one after another).
asan:
	$(MAKE) -j$(shell nproc 2>/dev/null || echo 2) B=build-asan BIN=build-asan/bin OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  build-asan/bin/es-unit all
	CK_FORK=no ASAN_OPTIONS=detect_leaks=1 build-asan/bin/es-unit
	ES_BIN=build-asan/bin ASAN_OPTIONS=detect_leaks=1 sh tests/integration/run.sh $(ASAN_TESTS)

integration: all
	sh tests/integration/run.sh

# The user-facing targets install what is missing first (scripts/deps.sh), then build in a
# sub-make: pkg-config flags are read when a make starts, so they must be read after the install.
test:
	@sh scripts/deps.sh
	$(MAKE) fmt-check lint all unit asan
	ES_TEST_SKIP="$(ASAN_TESTS)" sh tests/integration/run.sh

deps:
	@sh scripts/deps.sh

bench:
	@sh scripts/deps.sh
	$(MAKE) all
	sh bench/run.sh

soak:
	@sh scripts/deps.sh
	$(MAKE) all
	ES_SOAK=1 sh tests/integration/run.sh

up:
	@sh scripts/deps.sh
	$(MAKE) all
	sh scripts/devstack.sh up
down:
	sh scripts/devstack.sh down
status:
	sh scripts/devstack.sh status
reset:
	sh scripts/devstack.sh reset
demo:
	@sh scripts/deps.sh
	$(MAKE) all
	sh scripts/devstack.sh up
	sh scripts/demo.sh

fmt:
	clang-format -i $$(find lib producers consumers projections devstack tests saga-coordinator bench -name '*.[ch]')
fmt-check:
	clang-format --dry-run -Werror $$(find lib producers consumers projections devstack tests saga-coordinator bench -name '*.[ch]')
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem -Ilib lib producers consumers projections devstack \
	  saga-coordinator

clean:
	rm -rf build build-asan bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)

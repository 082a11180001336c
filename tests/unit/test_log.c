/* The log gate: a repeated complaint is a warning once per interval per key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kmipd/log.h"

static void first_complaint_then_quiet_until_the_interval_passes(void **state)
{
	struct log_gate gate = {.interval_ms = 60000};

	(void)state;
	assert_int_equal(log_gate_level(&gate, 7, 1000, LOG_WARN), LOG_WARN);
	assert_int_equal(log_gate_level(&gate, 7, 2000, LOG_WARN), LOG_DEBUG);
	assert_int_equal(log_gate_level(&gate, 7, 60999, LOG_WARN), LOG_DEBUG);
	assert_int_equal(log_gate_level(&gate, 7, 61000, LOG_WARN), LOG_WARN);
	assert_int_equal(log_gate_level(&gate, 7, 61001, LOG_WARN), LOG_DEBUG);
}

static void keys_are_gated_apart(void **state)
{
	struct log_gate gate = {.interval_ms = 1000};

	(void)state;
	assert_int_equal(log_gate_level(&gate, 1, 10, LOG_WARN), LOG_WARN);
	assert_int_equal(log_gate_level(&gate, 2, 11, LOG_WARN), LOG_WARN);
	assert_int_equal(log_gate_level(&gate, 1, 12, LOG_WARN), LOG_DEBUG);
	assert_int_equal(log_gate_level(&gate, 2, 13, LOG_WARN), LOG_DEBUG);
}

static void a_time_of_zero_still_counts(void **state)
{
	struct log_gate gate = {.interval_ms = 1000};

	(void)state;
	assert_int_equal(log_gate_level(&gate, 0, 0, LOG_INFO), LOG_INFO);
	assert_int_equal(log_gate_level(&gate, 0, 0, LOG_INFO), LOG_DEBUG);
}

static void the_oldest_key_makes_room(void **state)
{
	struct log_gate gate = {.interval_ms = 1000000};

	(void)state;
	for (uint64_t key = 1; key <= 8; key++)
		assert_int_equal(log_gate_level(&gate, key, key, LOG_WARN), LOG_WARN);
	/* A ninth key evicts key 1, the oldest; keys 2-8 stay quiet. */
	assert_int_equal(log_gate_level(&gate, 9, 100, LOG_WARN), LOG_WARN);
	for (uint64_t key = 2; key <= 9; key++)
		assert_int_equal(log_gate_level(&gate, key, 200, LOG_WARN), LOG_DEBUG);
	assert_int_equal(log_gate_level(&gate, 1, 300, LOG_WARN), LOG_WARN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_complaint_then_quiet_until_the_interval_passes),
		cmocka_unit_test(keys_are_gated_apart),
		cmocka_unit_test(a_time_of_zero_still_counts),
		cmocka_unit_test(the_oldest_key_makes_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Key material handling: sealing and opening with AES-256-GCM, UUIDs, the root key file and
 * tenant KEK wrapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kmipd/crypto.h"
#include "kmipd/error.h"

/* Per-test state: two different keys, a sealed blob and a scratch directory. */
struct fixture {
	struct crypto_key *key;
	struct crypto_key *other;
	struct buf sealed;
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->key = crypto_key_new();
	f->other = crypto_key_new();
	assert_non_null(f->key);
	assert_non_null(f->other);
	assert_int_equal(crypto_random(f->key->bytes, CRYPTO_KEY_LEN), 0);
	assert_int_equal(crypto_random(f->other->bytes, CRYPTO_KEY_LEN), 0);
	strcpy(f->dir, "/tmp/kmipd-test-crypto-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/root.key", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	buf_free(&f->sealed);
	crypto_key_free(f->key);
	crypto_key_free(f->other);
	free(f);
	return 0;
}

static const char aad[] = "tenant acme, object 42";
static const uint8_t plain[] = "the quick brown fox jumps over the lazy dog";

#define SEAL(f)		     crypto_seal((f)->key, aad, sizeof(aad), plain, sizeof(plain), &(f)->sealed)
#define OPEN(f, key, a, out) crypto_open(key, a, sizeof(a), (f)->sealed.data, (f)->sealed.len, out)

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void seal_open_round_trip(void **state)
{
	struct fixture *f = *state;
	uint8_t out[sizeof(plain)];

	assert_int_equal(SEAL(f), 0);
	assert_int_equal(f->sealed.len, sizeof(plain) + CRYPTO_SEAL_OVERHEAD);
	assert_int_equal(f->sealed.data[0], CRYPTO_SEAL_VERSION);
	assert_memory_not_equal(f->sealed.data + 1 + 12, plain, sizeof(plain));
	assert_int_equal(OPEN(f, f->key, aad, out), 0);
	assert_memory_equal(out, plain, sizeof(plain));
}

static void seal_appends_and_nonces_differ(void **state)
{
	struct fixture *f = *state;
	const size_t one = sizeof(plain) + CRYPTO_SEAL_OVERHEAD;
	uint8_t out[sizeof(plain)];

	assert_int_equal(buf_append(&f->sealed, "hdr", 3), 0);
	assert_int_equal(SEAL(f), 0);
	assert_int_equal(SEAL(f), 0);
	assert_int_equal(f->sealed.len, 3 + 2 * one);
	assert_memory_equal(f->sealed.data, "hdr", 3);
	/* Same key, same plaintext, two different blobs. */
	assert_memory_not_equal(f->sealed.data + 3, f->sealed.data + 3 + one, one);
	assert_int_equal(crypto_open(f->key, aad, sizeof(aad), f->sealed.data + 3 + one, one, out),
			 0);
	assert_memory_equal(out, plain, sizeof(plain));
}

static void empty_plaintext_and_empty_aad(void **state)
{
	struct fixture *f = *state;
	uint8_t out[1] = {0xaa};

	assert_int_equal(crypto_seal(f->key, NULL, 0, NULL, 0, &f->sealed), 0);
	assert_int_equal(f->sealed.len, CRYPTO_SEAL_OVERHEAD);
	assert_int_equal(crypto_open(f->key, NULL, 0, f->sealed.data, f->sealed.len, out), 0);
	assert_int_equal(crypto_open(f->key, "x", 1, f->sealed.data, f->sealed.len, out),
			 KMIPD_ECRYPTO);
	assert_int_equal(out[0], 0xaa);
}

static void wrong_key_is_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t out[sizeof(plain)];

	assert_int_equal(SEAL(f), 0);
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(OPEN(f, f->other, aad, out), KMIPD_ECRYPTO);
	assert_true(all_bytes(out, sizeof(out), 0xaa));
}

static void wrong_aad_is_refused(void **state)
{
	struct fixture *f = *state;
	static const char other_aad[] = "tenant acme, object 43";
	uint8_t out[sizeof(plain)];

	assert_int_equal(SEAL(f), 0);
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(OPEN(f, f->key, other_aad, out), KMIPD_ECRYPTO);
	assert_true(all_bytes(out, sizeof(out), 0xaa));
	/* A shorter AAD that is a prefix of the right one. */
	assert_int_equal(
		crypto_open(f->key, aad, sizeof(aad) - 1, f->sealed.data, f->sealed.len, out),
		KMIPD_ECRYPTO);
	assert_true(all_bytes(out, sizeof(out), 0xaa));
}

/* Every single flipped bit anywhere in the blob is detected; the version byte is checked
 * before anything else. */
static void every_flipped_byte_is_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t out[sizeof(plain)];
	size_t i;

	assert_int_equal(SEAL(f), 0);
	for (i = 0; i < f->sealed.len; i++) {
		f->sealed.data[i] ^= 0x01;
		memset(out, 0xaa, sizeof(out));
		assert_int_equal(OPEN(f, f->key, aad, out),
				 i == 0 ? KMIPD_EMALFORMED : KMIPD_ECRYPTO);
		assert_true(all_bytes(out, sizeof(out), 0xaa));
		f->sealed.data[i] ^= 0x01;
	}
	assert_int_equal(OPEN(f, f->key, aad, out), 0);
}

static void unknown_version_is_malformed(void **state)
{
	struct fixture *f = *state;
	uint8_t out[sizeof(plain)];

	assert_int_equal(SEAL(f), 0);
	f->sealed.data[0] = CRYPTO_SEAL_VERSION_KEK + 1;
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(OPEN(f, f->key, aad, out), KMIPD_EMALFORMED);
	assert_true(all_bytes(out, sizeof(out), 0xaa));
}

static void short_blob_is_malformed(void **state)
{
	struct fixture *f = *state;
	uint8_t out[sizeof(plain)];

	assert_int_equal(SEAL(f), 0);
	assert_int_equal(crypto_open(f->key, aad, sizeof(aad), f->sealed.data,
				     CRYPTO_SEAL_OVERHEAD - 1, out),
			 KMIPD_EMALFORMED);
	assert_int_equal(crypto_open(f->key, aad, sizeof(aad), f->sealed.data, 0, out),
			 KMIPD_EMALFORMED);
	/* Truncated by one byte: still long enough to parse, so the tag check fails. */
	assert_int_equal(
		crypto_open(f->key, aad, sizeof(aad), f->sealed.data, f->sealed.len - 1, out),
		KMIPD_ECRYPTO);
}

static void object_aad_layout(void **state)
{
	static const uint8_t expected[] = "kmipd-object\0acme\0uid-1\0\x00\x00\x00\x02";
	uint8_t out[64];

	(void)state;
	assert_int_equal(crypto_object_aad(out, sizeof(out), "acme", "uid-1", 2),
			 sizeof(expected) - 1);
	assert_memory_equal(out, expected, sizeof(expected) - 1);
	assert_int_equal(crypto_object_aad(out, sizeof(expected) - 2, "acme", "uid-1", 2), 0);
	assert_int_equal(crypto_object_aad(out, sizeof(expected) - 1, "acme", "uid-1", 2),
			 sizeof(expected) - 1);
	/* The NUL separators keep ("ab", "c") and ("a", "bc") apart. */
	{
		uint8_t a[64], b[64];
		size_t la = crypto_object_aad(a, sizeof(a), "ab", "c", 2);
		size_t lb = crypto_object_aad(b, sizeof(b), "a", "bc", 2);

		assert_int_equal(la, lb);
		assert_memory_not_equal(a, b, la);
	}
}

static int compare_uuids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void uuids_are_v7_unique_and_time_ordered(void **state)
{
	enum { N = 1000 };
	char(*ids)[37] = calloc(N, sizeof(*ids));
	int i, j;

	(void)state;
	assert_non_null(ids);
	for (i = 0; i < N; i++) {
		assert_int_equal(crypto_uuid(ids[i]), 0);
		assert_int_equal(strlen(ids[i]), 36);
		for (j = 0; j < 36; j++) {
			char c = ids[i][j];

			if (j == 8 || j == 13 || j == 18 || j == 23)
				assert_int_equal(c, '-');
			else
				assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
		}
		assert_int_equal(ids[i][14], '7');
		assert_non_null(strchr("89ab", ids[i][19]));
		/* Each sorts after the one made before it, even within a millisecond. */
		if (i > 0)
			assert_true(strcmp(ids[i - 1], ids[i]) < 0);
	}
	qsort(ids, N, sizeof(*ids), compare_uuids);
	for (i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

enum { ORDER_THREADS = 4, ORDER_IDS = 20000 };

/* Makes ORDER_IDS request ids one after another into @arg (ORDER_IDS * 16 bytes). */
static void *make_request_ids(void *arg)
{
	uint8_t *ids = arg;

	for (int i = 0; i < ORDER_IDS; i++)
		if (crypto_request_id(ids + (size_t)i * 16) != 0)
			return arg;
	return NULL;
}

static int compare_request_ids(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Threads making request ids at once, far more than one a millisecond each: each thread's
 * ids increase, and no two ids of any thread are the same in their ordered part (time and
 * fraction), which the threads share. */
static void request_ids_increase_across_threads(void **state)
{
	uint8_t *ids = calloc((size_t)ORDER_THREADS * ORDER_IDS, 16);
	pthread_t threads[ORDER_THREADS];
	size_t n = (size_t)ORDER_THREADS * ORDER_IDS;
	struct timespec ts;
	uint64_t now_ms, first_ms = 0;

	(void)state;
	assert_non_null(ids);
	for (int t = 0; t < ORDER_THREADS; t++)
		assert_int_equal(pthread_create(&threads[t], NULL, make_request_ids,
						ids + (size_t)t * ORDER_IDS * 16),
				 0);
	for (int t = 0; t < ORDER_THREADS; t++) {
		void *failed = ids;

		assert_int_equal(pthread_join(threads[t], &failed), 0);
		assert_null(failed);
		for (int i = 1; i < ORDER_IDS; i++) {
			const uint8_t *id = ids + ((size_t)t * ORDER_IDS + (size_t)i) * 16;

			assert_true(memcmp(id - 16, id, 16) < 0);
			assert_int_equal(id[6] & 0xf0, 0);
		}
	}
	/* The first 48 bits are the time the first was made, give or take the run. */
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (int i = 0; i < 6; i++)
		first_ms = first_ms << 8 | ids[i];
	assert_true(first_ms <= now_ms && now_ms - first_ms < 60000);
	qsort(ids, n, 16, compare_request_ids);
	for (size_t i = 1; i < n; i++)
		assert_memory_not_equal(ids + (i - 1) * 16, ids + i * 16, 8);
	free(ids);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void root_key_is_created_then_loaded(void **state)
{
	struct fixture *f = *state;
	struct crypto_key *a = crypto_key_new(), *b = crypto_key_new();
	char msg[256] = "";
	struct stat st;

	assert_int_equal(crypto_root_key_load(f->path, false, a, msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, f->path));

	assert_int_equal(crypto_root_key_load(f->path, true, a, msg, sizeof(msg)), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, CRYPTO_KEY_LEN);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_false(all_bytes(a->bytes, CRYPTO_KEY_LEN, 0));

	/* The second start reads the same key, with or without create. */
	assert_int_equal(crypto_root_key_load(f->path, true, b, msg, sizeof(msg)), 0);
	assert_memory_equal(a->bytes, b->bytes, CRYPTO_KEY_LEN);
	memset(b->bytes, 0, CRYPTO_KEY_LEN);
	assert_int_equal(crypto_root_key_load(f->path, false, b, msg, sizeof(msg)), 0);
	assert_memory_equal(a->bytes, b->bytes, CRYPTO_KEY_LEN);

	crypto_key_free(a);
	crypto_key_free(b);
}

static void root_key_of_wrong_size_is_refused(void **state)
{
	struct fixture *f = *state;
	struct crypto_key *k = crypto_key_new();
	uint8_t data[CRYPTO_KEY_LEN + 1];
	char msg[256] = "";

	memset(data, 0x11, sizeof(data));
	write_file(f->path, data, CRYPTO_KEY_LEN - 1, 0600);
	assert_int_equal(crypto_root_key_load(f->path, true, k, msg, sizeof(msg)), KMIPD_ECORRUPT);
	assert_non_null(strstr(msg, f->path));
	assert_true(all_bytes(k->bytes, CRYPTO_KEY_LEN, 0));

	unlink(f->path);
	write_file(f->path, data, CRYPTO_KEY_LEN + 1, 0600);
	assert_int_equal(crypto_root_key_load(f->path, false, k, msg, sizeof(msg)), KMIPD_ECORRUPT);

	unlink(f->path);
	write_file(f->path, data, 0, 0600);
	assert_int_equal(crypto_root_key_load(f->path, true, k, msg, sizeof(msg)), KMIPD_ECORRUPT);
	assert_true(all_bytes(k->bytes, CRYPTO_KEY_LEN, 0));
	crypto_key_free(k);
}

static void root_key_open_to_others_is_refused(void **state)
{
	struct fixture *f = *state;
	struct crypto_key *k = crypto_key_new();
	uint8_t data[CRYPTO_KEY_LEN];
	char msg[256] = "";

	memset(data, 0x22, sizeof(data));
	write_file(f->path, data, sizeof(data), 0644);
	assert_int_equal(crypto_root_key_load(f->path, true, k, msg, sizeof(msg)),
			 KMIPD_EPERMISSION);
	assert_non_null(strstr(msg, f->path));
	assert_non_null(strstr(msg, "0644"));
	assert_non_null(strstr(msg, "chmod 600"));
	assert_true(all_bytes(k->bytes, CRYPTO_KEY_LEN, 0));

	assert_int_equal(chmod(f->path, 0620), 0);
	assert_int_equal(crypto_root_key_load(f->path, true, k, msg, sizeof(msg)),
			 KMIPD_EPERMISSION);
	assert_non_null(strstr(msg, "writable"));

	assert_int_equal(chmod(f->path, 0400), 0);
	assert_int_equal(crypto_root_key_load(f->path, false, k, msg, sizeof(msg)), 0);
	assert_true(all_bytes(k->bytes, CRYPTO_KEY_LEN, 0x22));
	crypto_key_free(k);
}

static void root_key_directory_is_refused(void **state)
{
	struct fixture *f = *state;
	struct crypto_key *k = crypto_key_new();
	char msg[256] = "";

	assert_int_equal(crypto_root_key_load(f->dir, true, k, msg, sizeof(msg)), KMIPD_EINVAL);
	assert_non_null(strstr(msg, f->dir));
	crypto_key_free(k);
}

static void kek_wraps_and_unwraps_for_its_tenant_only(void **state)
{
	struct fixture *f = *state;
	struct crypto_key *kek = crypto_key_new(), *back = crypto_key_new();
	struct buf wrapped = BUF_INIT;

	assert_int_equal(crypto_random(kek->bytes, CRYPTO_KEY_LEN), 0);
	assert_int_equal(crypto_kek_wrap(f->key, "acme", 1, kek, &wrapped), 0);
	assert_int_equal(wrapped.len, CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD);
	assert_int_equal(crypto_kek_unwrap(f->key, "acme", 1, wrapped.data, wrapped.len, back), 0);
	assert_memory_equal(kek->bytes, back->bytes, CRYPTO_KEY_LEN);

	memset(back->bytes, 0, CRYPTO_KEY_LEN);
	assert_int_equal(crypto_kek_unwrap(f->key, "globex", 1, wrapped.data, wrapped.len, back),
			 KMIPD_ECRYPTO);
	assert_int_equal(crypto_kek_unwrap(f->key, "acm", 1, wrapped.data, wrapped.len, back),
			 KMIPD_ECRYPTO);
	assert_int_equal(crypto_kek_unwrap(f->other, "acme", 1, wrapped.data, wrapped.len, back),
			 KMIPD_ECRYPTO);
	assert_int_equal(crypto_kek_unwrap(f->key, "acme", 1, wrapped.data, wrapped.len - 1, back),
			 KMIPD_EMALFORMED);
	assert_true(all_bytes(back->bytes, CRYPTO_KEY_LEN, 0));

	/* Object material sealed with the same key and the tenant name as AAD is not a KEK. */
	buf_clear(&wrapped);
	assert_int_equal(crypto_seal(f->key, "acme", 4, kek->bytes, CRYPTO_KEY_LEN, &wrapped), 0);
	assert_int_equal(crypto_kek_unwrap(f->key, "acme", 1, wrapped.data, wrapped.len, back),
			 KMIPD_ECRYPTO);

	/* A later version is bound to its number: version 2's wrap opens as version 2 only. */
	buf_clear(&wrapped);
	assert_int_equal(crypto_kek_wrap(f->key, "acme", 2, kek, &wrapped), 0);
	assert_int_equal(crypto_kek_unwrap(f->key, "acme", 1, wrapped.data, wrapped.len, back),
			 KMIPD_ECRYPTO);
	assert_int_equal(crypto_kek_unwrap(f->key, "acme", 3, wrapped.data, wrapped.len, back),
			 KMIPD_ECRYPTO);
	assert_int_equal(crypto_kek_unwrap(f->key, "acme", 2, wrapped.data, wrapped.len, back), 0);
	assert_memory_equal(kek->bytes, back->bytes, CRYPTO_KEY_LEN);

	buf_free(&wrapped);
	crypto_key_free(kek);
	crypto_key_free(back);
}

/* Material sealed under KEK version 1 keeps format 1 (readable by every kmipd); later
 * versions write format 2, which names the version, and the version is authenticated. */
static void sealed_material_names_its_kek_version(void **state)
{
	struct fixture *f = *state;
	static const uint8_t material[] = "thirty-two bytes of key material";
	uint8_t back[sizeof(material)];
	struct buf one = BUF_INIT, seven = BUF_INIT;
	uint32_t version;
	size_t len;

	assert_int_equal(crypto_seal_kek(f->key, 1, "a", 1, material, sizeof(material), &one), 0);
	assert_int_equal(one.data[0], CRYPTO_SEAL_VERSION);
	assert_int_equal(one.len, sizeof(material) + CRYPTO_SEAL_OVERHEAD);
	assert_int_equal(crypto_sealed_info(one.data, one.len, &version, &len), 0);
	assert_int_equal(version, 1);
	assert_int_equal(len, sizeof(material));

	assert_int_equal(crypto_seal_kek(f->key, 7, "a", 1, material, sizeof(material), &seven), 0);
	assert_int_equal(seven.data[0], CRYPTO_SEAL_VERSION_KEK);
	assert_int_equal(seven.len, sizeof(material) + CRYPTO_SEAL_OVERHEAD + 4);
	assert_int_equal(crypto_sealed_info(seven.data, seven.len, &version, &len), 0);
	assert_int_equal(version, 7);
	assert_int_equal(len, sizeof(material));
	assert_int_equal(crypto_open(f->key, "a", 1, seven.data, seven.len, back), 0);
	assert_memory_equal(back, material, sizeof(material));

	/* Changing the recorded version breaks the tag. */
	seven.data[4] = 8;
	assert_int_equal(crypto_open(f->key, "a", 1, seven.data, seven.len, back), KMIPD_ECRYPTO);
	/* Format 2 cannot claim version 0 or 1, and must hold a nonce and a tag. */
	seven.data[4] = 1;
	assert_int_equal(crypto_sealed_info(seven.data, seven.len, &version, &len),
			 KMIPD_EMALFORMED);
	assert_int_equal(crypto_sealed_info(seven.data, 5 + 12 + 15, &version, &len),
			 KMIPD_EMALFORMED);
	buf_free(&one);
	buf_free(&seven);
}

#define DRAWS 2000

static int compare_draws(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* Small draws come from a pool per thread: across many refills none repeats. */
static void random_draws_never_repeat_across_refills(void **state)
{
	static uint8_t draws[DRAWS][32];
	static const uint8_t zero[32];
	uint8_t big[300];

	(void)state;
	for (size_t i = 0; i < DRAWS; i++) {
		assert_int_equal(crypto_random(draws[i], i % 2 ? 32 : 20), 0);
		if (i % 2 == 0)
			memset(draws[i] + 20, (int)(i & 0xff), 12);
		assert_memory_not_equal(draws[i], zero, 20);
	}
	qsort(draws, DRAWS, sizeof(draws[0]), compare_draws);
	for (size_t i = 1; i < DRAWS; i++)
		assert_memory_not_equal(draws[i - 1], draws[i], 32);
	assert_int_equal(crypto_random(big, sizeof(big)), 0); /* too big to pool: drawn at once */
}

/* A child forked after its parent drew from the pool must not hand out the same bytes. */
static void a_forked_child_does_not_draw_what_its_parent_draws(void **state)
{
	uint8_t first[16], parent[32], child[32];
	int fds[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(crypto_random(first, sizeof(first)), 0); /* the pool is filled */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int ok = crypto_random(child, sizeof(child)) == 0 &&
			 write(fds[1], child, sizeof(child)) == (ssize_t)sizeof(child);
		_exit(ok ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(crypto_random(parent, sizeof(parent)), 0);
	assert_int_equal(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_memory_not_equal(parent, child, sizeof(child));
}

static void core_dumps_are_disabled(void **state)
{
	struct rlimit rl;

	(void)state;
	crypto_disable_core_dumps();
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
	/* LeakSanitizer's end-of-run check needs to trace this process. */
	assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(seal_open_round_trip),
		T(seal_appends_and_nonces_differ),
		T(empty_plaintext_and_empty_aad),
		T(wrong_key_is_refused),
		T(wrong_aad_is_refused),
		T(every_flipped_byte_is_refused),
		T(unknown_version_is_malformed),
		T(short_blob_is_malformed),
		T(object_aad_layout),
		T(uuids_are_v7_unique_and_time_ordered),
		T(request_ids_increase_across_threads),
		T(root_key_is_created_then_loaded),
		T(root_key_of_wrong_size_is_refused),
		T(root_key_open_to_others_is_refused),
		T(root_key_directory_is_refused),
		T(kek_wraps_and_unwraps_for_its_tenant_only),
		T(sealed_material_names_its_kek_version),
		T(random_draws_never_repeat_across_refills),
		T(a_forked_child_does_not_draw_what_its_parent_draws),
		T(core_dumps_are_disabled),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

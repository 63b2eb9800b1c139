// SPDX-License-Identifier: GPL-2.0
/*
 * --oracle hkdf|xts|fname|csum: batch answers for the pytest comparisons
 * (tests/test_crypto.py), one case per stdin line, one answer per stdout line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "crypto/csum.h"
#include "kernel-shared/hash.h"
#include "crypto/fname.h"
#include "crypto/fscrypt-keys.h"
#include "crypto/hkdf.h"
#include "crypto/xts.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

/* Decode a hex token into a fresh buffer ("-" is empty); returns the size or -1. */
static long token_hex(const char *tok, uint8_t **out)
{
	size_t len = tok ? strlen(tok) : 0;

	*out = malloc(len / 2 + 1);
	if (!tok || !*out)
		return -1;
	if (strcmp(tok, "-") == 0)
		return 0;
	return unit_unhex(tok, *out, len / 2 + 1);
}

static void print_hex_line(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
	putchar('\n');
}

/* hkdf: "IKM CTX DATA|- LEN" -> OKM, through the fscrypt derivation functions. */
static int oracle_hkdf(char **tok)
{
	struct fscrypt_master_key mk;
	uint8_t *ikm = NULL, *data = NULL, out[256];
	long ikm_len = token_hex(tok[0], &ikm), data_len = token_hex(tok[2], &data);
	int ctx = tok[1] ? atoi(tok[1]) : -1, len = tok[3] ? atoi(tok[3]) : 0, ret = -EINVAL;

	if (ikm_len < 0 || data_len < 0 || len <= 0 || len > (int)sizeof(out))
		goto out;
	ret = fscrypt_master_key_init(&mk, ikm, (size_t)ikm_len);
	if (ret)
		goto out;
	if (ctx == FSCRYPT_HKDF_KEY_IDENTIFIER && len == 16 && data_len == 0) {
		memcpy(out, mk.identifier, 16);
	} else if (ctx == FSCRYPT_HKDF_PER_FILE_ENC_KEY && data_len == 16 &&
		   (len == 64 || len == 32 || len == 16)) {
		ret = fscrypt_derive_file_key(&mk, data, len == 64 ? 1 : len == 32 ? 4 : 6,
					      out, NULL);
	} else if ((ctx == 9 || ctx == 8) && data_len == 16 && len == 64) {
		ret = fscrypt_derive_extent_key(&mk, ctx == 9 ? FSCRYPT_PROFILE_V7 :
						FSCRYPT_PROFILE_V5, 1, data, out, NULL);
	} else {
		ret = hkdf_sha512_expand_fscrypt(mk.prk, (uint8_t)ctx, data, (size_t)data_len,
						 out, (size_t)len);
	}
	fscrypt_master_key_wipe(&mk);
out:
	if (ret)
		printf("ERR %d\n", ret);
	else
		print_hex_line(out, (size_t)len);
	free(ikm);
	free(data);
	return ret;
}

/* xts: "KEY DUN UNIT enc|dec DATA" -> DATA' (a run of units starting at DUN). */
static int oracle_xts(char **tok)
{
	uint8_t *key = NULL, *data = NULL;
	long key_len = token_hex(tok[0], &key), len = token_hex(tok[4], &data);
	unsigned long long dun = tok[1] ? strtoull(tok[1], NULL, 0) : 0;
	long unit = tok[2] ? atol(tok[2]) : 0;
	struct xts_ctx *x = NULL;
	int ret = -EINVAL;

	if (key_len < 0 || len <= 0 || unit <= 0 || len % unit || !tok[3])
		goto out;
	ret = xts_ctx_new(&x, key, (size_t)key_len);
	if (ret)
		goto out;
	if (strcmp(tok[3], "enc") == 0)
		ret = xts_encrypt(x, dun, data, data, (size_t)unit, (size_t)(len / unit));
	else
		ret = xts_decrypt(x, dun, data, data, (size_t)unit, (size_t)(len / unit));
out:
	if (ret)
		printf("ERR %d\n", ret);
	else
		print_hex_line(data, (size_t)len);
	xts_ctx_free(x);
	free(key);
	free(data);
	return ret;
}

/*
 * fname: "enc KEY MODE FLAGS NAME" -> "CT HASH"; "dec KEY MODE CT" -> NAME;
 * "symenc KEY MODE FLAGS MAXDATA TARGET" -> DATA; "symdec KEY MODE DATA" -> TARGET.
 */
static int oracle_fname(char **tok)
{
	uint8_t *key = NULL, *in = NULL, out[8192];
	int mode = tok[2] ? atoi(tok[2]) : 0, ret = -EINVAL;
	const char *op = tok[0] ? tok[0] : "";
	long in_len;

	token_hex(tok[1], &key);
	if (strcmp(op, "enc") == 0 && tok[3]) {
		in_len = token_hex(tok[4], &in);
		if (in_len >= 0)
			ret = fname_encrypt(mode, key, (uint8_t)atoi(tok[3]), in, (size_t)in_len, out);
		if (ret > 0) {
			for (int i = 0; i < ret; i++)
				printf("%02x", out[i]);
			printf(" %08x\n", btrfs_name_hash(out, (size_t)ret));
		}
	} else if (strcmp(op, "dec") == 0) {
		in_len = token_hex(tok[3], &in);
		if (in_len >= 0)
			ret = fname_decrypt(mode, key, in, (size_t)in_len, out);
		if (ret > 0)
			print_hex_line(out, (size_t)ret);
	} else if (strcmp(op, "symenc") == 0 && tok[3] && tok[4]) {
		in_len = token_hex(tok[5], &in);
		if (in_len >= 0)
			ret = fscrypt_symlink_encrypt(mode, key, (uint8_t)atoi(tok[3]), in,
						      (size_t)in_len, (size_t)atol(tok[4]),
						      out, sizeof(out));
		if (ret > 0)
			print_hex_line(out, (size_t)ret);
	} else if (strcmp(op, "symdec") == 0) {
		in_len = token_hex(tok[3], &in);
		if (in_len >= 0)
			ret = fscrypt_symlink_decrypt(mode, key, in, (size_t)in_len, out, sizeof(out));
		if (ret > 0)
			print_hex_line(out, (size_t)ret);
	}
	if (ret <= 0)
		printf("ERR %d\n", ret);
	free(key);
	free(in);
	return ret > 0 ? 0 : ret;
}

/* csum: "TYPE DATA" -> digest (csum_type_size bytes); "batch TYPE UNIT DATA" -> digests. */
static int oracle_csum(char **tok)
{
	uint8_t *data = NULL, out[CSUM_MAX_SIZE];
	long len;
	int ret = 0;

	if (tok[0] && strcmp(tok[0], "batch") == 0) {
		int type = tok[1] ? atoi(tok[1]) : -1;
		long unit = tok[2] ? atol(tok[2]) : 0;
		uint8_t *digests;

		len = token_hex(tok[3], &data);
		if (!csum_type_size(type) || unit <= 0 || len < 0 || len % unit) {
			printf("ERR %d\n", -EINVAL);
			free(data);
			return -EINVAL;
		}
		digests = malloc((size_t)(len / unit) * csum_type_size(type) + 1);
		csum_batch(type, data, (size_t)unit, (size_t)(len / unit), digests);
		print_hex_line(digests, (size_t)(len / unit) * csum_type_size(type));
		free(digests);
		free(data);
		return 0;
	}
	len = token_hex(tok[1], &data);
	if (!tok[0] || !csum_type_size(atoi(tok[0])) || len < 0) {
		ret = -EINVAL;
		printf("ERR %d\n", ret);
	} else {
		csum_compute(atoi(tok[0]), data, (size_t)len, out);
		print_hex_line(out, csum_type_size(atoi(tok[0])));
	}
	free(data);
	return ret;
}

static int oracle_main(int argc, char **argv)
{
	int (*fn)(char **tok) = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long cases = 0;

	if (argc == 2 && strcmp(argv[1], "hkdf") == 0)
		fn = oracle_hkdf;
	else if (argc == 2 && strcmp(argv[1], "xts") == 0)
		fn = oracle_xts;
	else if (argc == 2 && strcmp(argv[1], "fname") == 0)
		fn = oracle_fname;
	else if (argc == 2 && strcmp(argv[1], "csum") == 0)
		fn = oracle_csum;
	if (!fn) {
		fprintf(stderr, "usage: unit-tests --oracle hkdf|xts|fname|csum < cases\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	while ((n = getline(&line, &cap, stdin)) > 0) {
		char *tok[8] = { 0 }, *save = NULL, *t = strtok_r(line, " \t\r\n", &save);
		int nt = 0;

		if (!t)
			continue;
		while (t && nt < 8) {
			tok[nt++] = t;
			t = strtok_r(NULL, " \t\r\n", &save);
		}
		fn(tok);
		cases++;
	}
	free(line);
	fflush(stdout);
	fprintf(stderr, "oracle %s: %lu cases\n", argv[1], cases);
	return 0;
}

UNIT_MODE(oracle, "--oracle", "--oracle hkdf|xts|fname|csum   (cases on stdin, answers on stdout)",
	  oracle_main)

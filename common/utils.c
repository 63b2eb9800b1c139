// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <ctype.h>
#include "common/utils.h"

int parse_u64(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

bool utf8_valid(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;

		if (c < 0x80)
			n = 0;
		else if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return false;
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
		/*
		 * The second-byte ranges of the Unicode standard's table of
		 * well-formed sequences (3-7): no overlong 3- or 4-byte forms,
		 * no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
		 */
		if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] > 0x9f) ||
		    (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] > 0x8f))
			return false;
		i += n + 1;
	}
	return true;
}

const char *bytes_escape(const void *buf, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = buf;
	size_t pos = 0;

	for (size_t i = 0; i < len && pos + 5 < outlen; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			out[pos++] = p[i];
		} else {	/* "\\xNN", without a printf per byte */
			out[pos++] = '\\';
			out[pos++] = 'x';
			out[pos++] = hex[p[i] >> 4];
			out[pos++] = hex[p[i] & 15];
		}
	}
	out[pos] = 0;
	return out;
}

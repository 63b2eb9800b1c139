// SPDX-License-Identifier: GPL-2.0
/*
 * Names as text (common/escape.h).  The escapes are those btrfs-progs 6.14
 * prints in dump-tree: the C escapes \a \b \t \n \v \f \r and \e, a
 * backslash before space and backslash, three octal digits for any other
 * byte.
 */
#include <string.h>
#include "common/escape.h"
#include "common/fault.h"
#include "common/messages.h"

size_t esc_progs_byte(unsigned char ch, char *d)
{
	static const char letter[] = "abtnvfr";	/* bytes 7 to 13 */

	if (ch > ' ' && ch < 0x7f && ch != '\\') {
		d[0] = (char)ch;
		return 1;
	}
	d[0] = '\\';
	if (ch >= 7 && ch <= 13) {
		d[1] = letter[ch - 7];
		return 2;
	}
	if (ch == 27 || ch == ' ' || ch == '\\') {
		d[1] = ch == 27 ? 'e' : (char)ch;
		return 2;
	}
	d[1] = (char)('0' + (ch >> 6));
	d[2] = (char)('0' + ((ch >> 3) & 7));
	d[3] = (char)('0' + (ch & 7));
	return 4;
}

size_t esc_progs(const void *s, size_t n, char *dst)
{
	const unsigned char *p = s;
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += esc_progs_byte(p[i], dst + len);
	dst[len] = 0;
	return len;
}

/*
 * Length of the well-formed UTF-8 sequence at p[0] (at most n bytes): 1
 * for ASCII, 2-4 for a multi-byte character, 0 when malformed.  The
 * second-byte ranges are those of the Unicode standard's table 3-7 of
 * well-formed byte sequences: no overlong forms, no surrogates
 * (U+D800-U+DFFF), nothing above U+10FFFF.
 */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
	    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
		return 0;
	return len;
}

bool utf8_valid(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_seq_len(p + i, len - i);
		if (!n)
			return false;
	}
	return true;
}

/*
 * Length of the printable character at p[0]: its UTF-8 length, or 0 when
 * it must be escaped: a malformed sequence, a C0 control, DEL, a C1
 * control (U+0080-U+009F, encoded c2 80 to c2 9f) or, unless keep_bs, the
 * backslash.
 */
static size_t printable_len(const unsigned char *p, size_t n, bool keep_bs)
{
	unsigned char c = p[0];

	if (c < 0x80)
		return c >= 0x20 && c < 0x7f && (keep_bs || c != '\\');
	if (c == 0xc2 && n > 1 && p[1] < 0xa0)
		return 0;
	return utf8_seq_len(p, n);
}

static bool all_printable(const unsigned char *p, size_t n, bool keep_bs)
{
	for (size_t i = 0, len; i < n; i += len) {
		len = printable_len(p + i, n - i, keep_bs);
		if (!len)
			return false;
	}
	return true;
}

bool text_plain(const void *s, size_t n)
{
	return all_printable(s, n, false);
}

static const char *render(const unsigned char *p, size_t n, char *out, size_t outlen, bool keep_bs)
{
	size_t pos = 0;

	for (size_t i = 0; i < n;) {
		size_t len = printable_len(p + i, n - i, keep_bs);
		char esc[4];
		const char *from = (const char *)p + i;
		size_t w = len;

		if (!len) {
			w = esc_progs_byte(p[i], esc);
			from = esc;
			len = 1;
		}
		if (pos + w >= outlen)
			break;
		memcpy(out + pos, from, w);
		pos += w;
		i += len;
	}
	out[pos] = 0;
	return out;
}

const char *name_text(const void *s, size_t n, char *out, size_t outlen)
{
	return render(s, n, out, outlen, false);
}

char *name_text_dup(const void *s, size_t n)
{
	char *out = fault_malloc(4 * n + 1);

	if (!out)
		die_oom();
	return (char *)name_text(s, n, out, 4 * n + 1);
}

const char *str_text(const char *s, char *out, size_t outlen)
{
	size_t n = strlen(s);

	return all_printable((const unsigned char *)s, n, true) ? s :
		render((const unsigned char *)s, n, out, outlen, true);
}

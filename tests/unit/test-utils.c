// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of common/utils.c: utf8_valid() against the boundaries of the
 * Unicode standard's table of well-formed UTF-8 byte sequences (table 3-7),
 * and bytes_escape().
 */
#include <string.h>
#include "common/utils.h"
#include "tests/unit/unit.h"

#define VALID(s)	CHECK(utf8_valid(s, sizeof(s) - 1))
#define INVALID(s)	CHECK(!utf8_valid(s, sizeof(s) - 1))

UNIT_TEST(utf8_valid_table_3_7)
{
	VALID("");
	VALID("plain ascii \x01\x7f");
	VALID("\xc2\x80");			/* U+0080 */
	VALID("\xdf\xbf");			/* U+07FF */
	VALID("\xe0\xa0\x80");			/* U+0800 */
	VALID("\xed\x9f\xbf");			/* U+D7FF */
	VALID("\xee\x80\x80");			/* U+E000 */
	VALID("\xef\xbf\xbf");			/* U+FFFF */
	VALID("\xf0\x90\x80\x80");		/* U+10000 */
	VALID("\xf4\x8f\xbf\xbf");		/* U+10FFFF */

	INVALID("\x80");			/* lone continuation */
	INVALID("\xc0\xaf");			/* overlong '/' */
	INVALID("\xc1\xbf");
	INVALID("\xe0\x9f\xbf");		/* overlong U+07FF */
	INVALID("\xed\xa0\x80");		/* U+D800, a surrogate */
	INVALID("\xed\xbf\xbf");		/* U+DFFF */
	INVALID("\xf0\x8f\xbf\xbf");		/* overlong U+FFFF */
	INVALID("\xf4\x90\x80\x80");		/* U+110000 */
	INVALID("\xf5\x80\x80\x80");
	INVALID("\xff");
	INVALID("\xe2\x82");			/* cut short */
	INVALID("a\xc2");
	INVALID("\xe2\x28\xa1");		/* bad continuation */
}

/* bytes_escape(): printable ASCII as is, everything else and '\' as \xNN, cut to fit. */
UNIT_TEST(bytes_escape_forms_and_bounds)
{
	char out[64];

	CHECK(strcmp(bytes_escape("a b~", 4, out, sizeof(out)), "a b~") == 0);
	CHECK(strcmp(bytes_escape("\x1b\n\\\x7f\xff", 5, out, sizeof(out)),
		     "\\x1b\\x0a\\x5c\\x7f\\xff") == 0);
	CHECK(strcmp(bytes_escape("x\0y", 3, out, sizeof(out)), "x\\x00y") == 0);
	/* Never past outlen: 8 bytes hold one escape and the NUL, not two. */
	CHECK(strcmp(bytes_escape("\x01\x02", 2, out, 8), "\\x01") == 0);
	CHECK(strcmp(bytes_escape("abc", 3, out, 1), "") == 0);
}

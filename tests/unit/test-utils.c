// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of common/utils.c and common/escape.c: utf8_valid() against the boundaries of the
 * Unicode standard's table of well-formed UTF-8 byte sequences (table 3-7),
 * and the name renderer (common/escape.h).
 */
#include <string.h>
#include "common/escape.h"
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

/* esc_progs(): btrfs-progs' escapes; every byte outside 0x21-0x7e escaped. */
UNIT_TEST(esc_progs_forms)
{
	char out[64];

	CHECK(esc_progs("a b", 3, out) == 4 && strcmp(out, "a\\ b") == 0);
	esc_progs("\x07\x0d\x1b\\\x00\x7f\xc3\xa9", 8, out);
	CHECK(strcmp(out, "\\a\\r\\e\\\\\\000\\177\\303\\251") == 0);
}

/* name_text(): printable UTF-8 kept; control, C1, malformed and '\\' escaped; cut at whole escapes. */
UNIT_TEST(name_text_forms_and_bounds)
{
	char out[64];

	CHECK(strcmp(name_text("caf\xc3\xa9 x", 7, out, sizeof(out)), "caf\xc3\xa9 x") == 0);
	CHECK(strcmp(name_text("\x1b[1m\n\\", 6, out, sizeof(out)), "\\e[1m\\n\\\\") == 0);
	/* C1 control U+0085, a lone continuation byte, an overlong '/', a surrogate */
	CHECK(strcmp(name_text("\xc2\x85\x80\xc0\xaf\xed\xa0\x80", 8, out, sizeof(out)),
		     "\\302\\205\\200\\300\\257\\355\\240\\200") == 0);
	CHECK(strcmp(name_text("x\0y", 3, out, sizeof(out)), "x\\000y") == 0);
	/* Never past outlen, never half an escape or half a character. */
	CHECK(strcmp(name_text("\x01\x02", 2, out, 6), "\\001") == 0);
	CHECK(strcmp(name_text("\xc3\xa9", 2, out, 2), "") == 0);
	CHECK(strcmp(name_text("abc", 3, out, 1), "") == 0);
	CHECK(text_plain("caf\xc3\xa9", 5) && !text_plain("a\\b", 3) && !text_plain("\t", 1));
	/* The message net keeps backslashes (names in it are escaped already). */
	CHECK(strcmp(str_text("a\\e", out, sizeof(out)), "a\\e") == 0);
	CHECK(strcmp(str_text("a\x1b\xff", out, sizeof(out)), "a\\e\\377") == 0);
}

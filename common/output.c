// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <uuid/uuid.h>
#include <string.h>
#include "common/escape.h"
#include "common/fault.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/utils.h"

enum output_format g_format = FORMAT_TEXT;
static bool doc_printed;

bool json_doc_printed(void)
{
	return doc_printed;
}

struct json_object *json_doc_new(void)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *hdr = json_object_new_object();

	json_object_object_add(hdr, "version", json_object_new_string("1"));
	json_object_object_add(doc, "__header", hdr);
	return doc;
}

void json_doc_print(struct json_object *doc)
{
	fputs(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
					     JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
	fputc('\n', stdout);
	json_object_put(doc);
	doc_printed = true;
}

void json_line_print(struct json_object *o)
{
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					     JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
	fputc('\n', stdout);
	json_object_put(o);
	doc_printed = true;
}

struct json_object *json_u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

void hex_encode(const void *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = 0;
}

struct json_object *json_hex(const void *buf, size_t len)
{
	char small[256];
	char *s = len * 2 + 1 <= sizeof(small) ? small : fault_malloc(len * 2 + 1);
	struct json_object *o;

	if (!s)
		die_oom();	/* a field left out would go unnoticed */
	hex_encode(buf, len, s);
	o = json_object_new_string(s);
	if (s != small)
		free(s);
	return o;
}

struct json_object *json_uuid(const uint8_t *uuid)
{
	char s[37];

	uuid_unparse(uuid, s);
	return json_object_new_string(s);
}

void json_name_add(struct json_object *o, const char *key, const char *hexkey,
		   const void *s, size_t n)
{
	char *text;

	if (!s || text_plain(s, n)) {
		json_object_object_add(o, key, s ? json_object_new_string_len(s, (int)n) : NULL);
		return;
	}
	text = name_text_dup(s, n);
	json_object_object_add(o, key, json_object_new_string(text));
	free(text);
	json_object_object_add(o, hexkey, json_hex(s, n));
}

void json_add_error(struct json_object *doc, int exit_status)
{
	static const char *const codes[] = { "ok", "failed", "usage", "unreadable", "key" };
	struct json_object *err = json_object_new_object();
	const char *msg = messages_first_error();
	char esc[4 * 2048 + 1];

	/* As on stderr (common/messages.c): JSON strings must be UTF-8. */
	msg = str_text(msg, esc, sizeof(esc));
	json_object_object_add(err, "code", json_object_new_string(
		exit_status >= 0 && exit_status <= 4 ? codes[exit_status] : "failed"));
	json_object_object_add(err, "exit-status", json_object_new_int(exit_status));
	json_object_object_add(err, "message", json_object_new_string(msg));
	json_object_object_add(doc, "error", err);
}

void json_error_doc_print(int exit_status)
{
	struct json_object *doc = json_doc_new();

	json_add_error(doc, exit_status);
	json_doc_print(doc);
}

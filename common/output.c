// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <uuid/uuid.h>
#include "common/output.h"

enum output_format g_format = FORMAT_TEXT;

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
	char *s = len * 2 + 1 <= sizeof(small) ? small : malloc(len * 2 + 1);
	struct json_object *o;

	if (!s)
		return NULL;
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

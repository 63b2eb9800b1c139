/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Output formats (Documentation/design.rst section 5).  Text goes to stdout as stable
 * "Key: value" lines; JSON is one document per run, built with json-c, whose
 * first member is "__header": {"version": "1"}.
 */
#ifndef EXTCRYPT_OUTPUT_H
#define EXTCRYPT_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <json-c/json.h>

enum output_format { FORMAT_TEXT = 0, FORMAT_JSON = 1 };
extern enum output_format g_format;

/* New JSON document with the "__header" member already in place. */
struct json_object *json_doc_new(void);
/* Print the document on stdout (pretty, one trailing newline) and free it. */
void json_doc_print(struct json_object *doc);
/* One compact JSON object on one line of stdout (JSON Lines), then free it. */
void json_line_print(struct json_object *o);
/* Whether json_doc_print() or json_line_print() ran. */
bool json_doc_printed(void);
/*
 * The document of a run that failed before printing its own: the header
 * and "error": {"code", "exit-status", "message"} (messages_first_error()).
 */
void json_error_doc_print(int exit_status);
/* Add that "error" member to a command's own document (a partial result). */
void json_add_error(struct json_object *doc, int exit_status);

/* Helpers that keep numbers numbers: u64 values beyond INT64_MAX are emitted exactly. */
struct json_object *json_u64(uint64_t v);
/* Lowercase hex string of a byte buffer (out of memory: die_oom()). */
struct json_object *json_hex(const void *buf, size_t len);
/* Unparsed UUID "xxxxxxxx-xxxx-..." of 16 bytes. */
struct json_object *json_uuid(const uint8_t *uuid);
/*
 * A name (s, n bytes) as member key of o (common/escape.h): its exact text
 * when that is plain text, else its name_text() form, with member hexkey
 * beside it holding the exact bytes in lowercase hex.  A NULL s adds
 * key: null.
 */
void json_name_add(struct json_object *o, const char *key, const char *hexkey,
		   const void *s, size_t n);

/* Lowercase hex into out (2*len+1 bytes). */
void hex_encode(const void *buf, size_t len, char *out);

#endif

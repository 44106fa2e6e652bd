/* fixture_text: the text of fixture lines (docs/FIXTURES.md, "Placeholders"): checking
 * and expanding ${...} placeholders, C-style escapes of >raw/<raw, and matchers that
 * decide whether a line the SUT wrote is the one a step expects.
 *
 * Pure functions over caller strings; matchers own a compiled form. No I/O. */
#ifndef FIXTURE_TEXT_H
#define FIXTURE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "rc_error.h"

/* How a text is used: sent by the mock, or matched against what the SUT sent. */
typedef enum fixture_text_use {
  FIXTURE_TEXT_SEND = 1, /* > lines: values only */
  FIXTURE_TEXT_PATTERN,  /* < lines, http, ignore: values and wildcards */
  FIXTURE_TEXT_REGEX,    /* <~, http~, log~: a POSIX ERE with placeholders */
  FIXTURE_TEXT_RAW,      /* >raw, <raw: bytes with escapes, no placeholders */
} fixture_text_use_t;

/* The values placeholders stand for in one run. */
typedef struct fixture_vars {
  const char *server_name;
  const char *instance_name; /* the SUT's */
  const char *writer;        /* the mock's instance name */
} fixture_vars_t;

/* Checks text for its use: known placeholders only, no wildcard in a sent line, valid
 * escapes in raw text, a regular expression that compiles. Returns 0, or -1 with err
 * saying what is wrong (no location: the caller prefixes it). */
int fixture_text_check(const char *text, fixture_text_use_t use, rc_error_t *err);

/* The bytes of a sent line (FIXTURE_TEXT_SEND) with placeholders filled in, or of raw
 * text with escapes decoded (FIXTURE_TEXT_RAW). malloc'd, NUL-terminated, *len set;
 * NULL when out of memory (text must have passed fixture_text_check). */
char *fixture_text_expand(const char *text, fixture_text_use_t use, const fixture_vars_t *vars,
                          size_t *len);

/* Bytes written with the escapes fixture_text_expand decodes, so that any byte string
 * fits on one fixture line (printable ASCII and valid UTF-8 kept; a trailing space
 * escaped). malloc'd; NULL when out of memory. */
char *fixture_text_escape(const char *bytes, size_t len);

/* A pattern, regex or raw text ready to test lines. */
typedef struct fixture_matcher fixture_matcher_t;

fixture_matcher_t *fixture_matcher_create(const char *text, fixture_text_use_t use,
                                          const fixture_vars_t *vars, rc_error_t *err);
/* Whether the whole line matches. For regular expressions line[len] must be a NUL (as
 * in ledger entries); a line with a NUL inside never matches one. */
bool fixture_matcher_test(const fixture_matcher_t *m, const char *line, size_t len);
void fixture_matcher_destroy(fixture_matcher_t *m);

#endif

/* expected_failures: the user's list of tests known to fail (--expected-failures FILE).
 *
 * The file is the user's, never compiled in. Format, one entry per line:
 *   PATTERN  REASON
 * PATTERN is a test id or an fnmatch(3) glob over ids ('*' spans '/'); REASON, after
 * at least one space or tab, is mandatory free text (an explanation or an issue link)
 * running to the end of the line. Lines whose first non-blank character is '#' are
 * comments; blank lines are ignored; CRLF line ends are accepted. Listed tests still
 * run: a failure (FAIL, NON-STRICT or ERROR) becomes XFAIL, a pass becomes XPASS.
 * Every problem is reported as "FILE:LINE: what", including an entry that matches no
 * test of the registry at all (stale).
 *
 * Ownership: expected_failures_t owns its entries; free with expected_failures_destroy().
 * Entries are immutable after load. */
#ifndef EXPECTED_FAILURES_H
#define EXPECTED_FAILURES_H

#include <stddef.h>

#include "rc_error.h"
#include "registry.h"

typedef struct expected_failure {
  char *pattern;
  char *reason;
  int line; /* 1-based line in the file */
} expected_failure_t;

typedef struct expected_failures {
  char *path; /* as given, for messages */
  expected_failure_t *entries;
  size_t count;
} expected_failures_t;

/* Reads and parses a file. Returns NULL with err ("FILE:LINE: ...", or "FILE: <system
 * error>" when it cannot be read). */
expected_failures_t *expected_failures_load(const char *path, rc_error_t *err);

/* Parses text (len bytes; NUL bytes are an error) as if read from path. Same errors
 * as expected_failures_load(). */
expected_failures_t *expected_failures_parse(const char *path, const char *text, size_t len,
                                             rc_error_t *err);

void expected_failures_destroy(expected_failures_t *list);

/* Returns 0 if every entry matches some row of the registry (rows, n), or -1 with err
 * naming each stale entry as "FILE:LINE: 'pattern' matches no test in the registry"
 * (several on separate lines, as many as fit). */
int expected_failures_check_stale(const expected_failures_t *list, const rc_test_def_t *rows,
                                  size_t n, rc_error_t *err);

/* The first entry matching the test id, or NULL. list may be NULL. */
const expected_failure_t *expected_failures_find(const expected_failures_t *list, const char *id);

#endif

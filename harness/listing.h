/* listing: `replcheck list`, the registry rows as text, a Markdown table or JSON.
 *
 *   text      one aligned line per row (id, level, requirement ids, dialects,
 *             transports, requirement; "[skip: reason]" when a profile is given and
 *             the row does not apply to it), then "N tests".
 *   markdown  a table | id | level | requirements | dialects | transports | tags |
 *             requirement | source | (docs/TESTS.md is generated from it); '|' in a
 *             cell is escaped, line breaks become spaces.
 *   json      an array of objects with keys id, level, requirements (array), dialects,
 *             transports, tags (arrays), requirement, source, file, line, and with a
 *             profile also applies (bool) and skip_reason (string or null).
 * Rows come in the caller's order. One thread; writes only to `out`. */
#ifndef LISTING_H
#define LISTING_H

#include <stddef.h>
#include <stdio.h>

#include "profile.h"
#include "rc_error.h"
#include "registry.h"

typedef enum listing_format {
  LISTING_TEXT = 0,
  LISTING_MARKDOWN,
  LISTING_JSON,
} listing_format_t;

/* "text" / "markdown" / "json". Returns 0 or -1. */
int listing_format_from_name(const char *name, listing_format_t *out);

/* Writes rows[0..n) in format; profile may be NULL. Returns 0, or -1 with err on a
 * write or allocation failure. */
int listing_write(FILE *out, listing_format_t format, const rc_test_def_t *const *rows, size_t n,
                  const profile_t *profile, rc_error_t *err);

#endif

/* selection: which registry rows a run or a listing covers.
 *
 * Selectors are the words of `replcheck run|list [SELECTOR]...` and --filter:
 *   protocol/handshake/name-first   an exact test id
 *   protocol/handshake              an id prefix ending at a '/' boundary
 *   protocol/keep*, *timeout*       fnmatch(3) globs over the whole id (a '*' spans '/')
 *   tag:slow                        every row whose tags include "slow"
 *   !SELECTOR                       any of the above, excluded
 * The selection is the union of the positive selectors (every row when there are none)
 * minus the union of the negated ones, kept in registry order. A selector that matches
 * no row of the registry at all is an error, so a typo never silently selects (or
 * fails to exclude) anything.
 *
 * Sharding splits a selection deterministically for CI runners: selected test i
 * (0-based, registry order) belongs to shard K of N when i mod N == K - 1.
 *
 * Ownership: selection_t owns copies of its selectors; free with selection_destroy().
 * No global state. */
#ifndef SELECTION_H
#define SELECTION_H

#include <stdbool.h>
#include <stddef.h>

#include "rc_error.h"
#include "registry.h"

typedef struct selection selection_t;

/* Parses selectors. Returns NULL with err naming the bad selector ("selector '!': ...")
 * on an empty selector, a lone '!', "!!x", an empty tag name, or allocation failure. */
selection_t *selection_create(const char *const *selectors, size_t count, rc_error_t *err);
/* Frees. NULL is fine. */
void selection_destroy(selection_t *selection);

/* True if the row is selected: matched by some positive selector (or there is none)
 * and by no negated one. */
bool selection_matches(const selection_t *selection, const rc_test_def_t *def);

/* Checks every selector against the whole registry (rows, n). Returns 0, or -1 with
 * err naming the first selector that matches no row. */
int selection_check_unmatched(const selection_t *selection, const rc_test_def_t *rows, size_t n,
                              rc_error_t *err);

/* Writes pointers to the selected rows, in registry order, into out (room for n) and
 * returns how many. */
size_t selection_apply(const selection_t *selection, const rc_test_def_t *rows, size_t n,
                       const rc_test_def_t **out);

/* True if the comma-separated tag list (NULL = none) contains tag exactly; blanks
 * around tags are ignored. */
bool selection_has_tag(const char *tags, const char *tag);

/* One selector (without '!') against an id and a tag list: exact id, '/'-bounded
 * prefix, glob, or tag:NAME. */
bool selection_term_matches(const char *term, const char *id, const char *tags);

/* Parses "K/N" (1 <= K <= N <= 10000, decimal). Returns 0, or -1 with err saying what
 * is wrong with text. */
int selection_parse_shard(const char *text, unsigned *k, unsigned *n, rc_error_t *err);

/* Keeps the rows of shard K of N (see above) in place; returns the new count. */
size_t selection_shard(const rc_test_def_t **rows, size_t count, unsigned k, unsigned n);

#endif

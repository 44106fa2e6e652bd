/* rc_regex: POSIX extended regular expressions from text the harness does not control
 * (profiles, fixtures), compiled at a bounded cost.
 *
 * glibc's regcomp() copies a subexpression once for each repetition it has to expand:
 * "a+" becomes "aa*", "x{3}" three copies of x, so a quantifier applied to a quantified
 * expression multiplies ("a++++..." doubles per '+', "(a{99}){99}" makes 9801 copies).
 * A fuzzed fixture with 84 stacked '+' took regcomp past 2 GB. rc_regex_compile()
 * first estimates the expanded size of the pattern from its syntax (the same
 * multiplication, per nesting) and refuses one above RC_REGEX_MAX_EXPANSION, nested
 * deeper than RC_REGEX_MAX_DEPTH, or with more than RC_REGEX_MAX_STACKED quantifiers in
 * a row on one piece (each adds a level of empty transitions whose closure glibc
 * computes at a cost far above the element count); then it calls regcomp(). Patterns people write stay
 * far below (a profile's readiness pattern: tens). Stateless; thread-safe. */
#ifndef RC_REGEX_H
#define RC_REGEX_H

#include <regex.h>

#include "rc_error.h"

#define RC_REGEX_MAX_EXPANSION 20000
#define RC_REGEX_MAX_DEPTH 64
#define RC_REGEX_MAX_STACKED 3

/* Compiles pattern with regcomp(re, pattern, cflags) unless it would expand too far.
 * Returns 0 (re then needs regfree()), or -1 with err: "pattern would expand to more
 * than 20000 elements (quantifiers applied to quantifiers, or large repeat counts)",
 * "groups nested deeper than 64", or regerror()'s text. re is untouched on failure. */
int rc_regex_compile(regex_t *re, const char *pattern, int cflags, rc_error_t *err);

#endif

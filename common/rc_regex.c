#include "rc_regex.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct scan {
  const char *p;
  size_t at;
  int depth;
  bool too_deep;
  bool too_stacked; /* more than RC_REGEX_MAX_STACKED quantifiers in a row */
} scan_t;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A bound "{m}", "{m,}" or "{m,n}" at s->at: its copies as glibc expands it (the larger
 * count, one more when unbounded), and its length; false if it is not one (regcomp then
 * judges the '{'). */
static bool parse_bound(const scan_t *s, double *copies, size_t *len) {
  const char *p = s->p + s->at + 1;
  double lo = 0, hi = -1;
  size_t i = 0;
  if (!is_digit(p[i])) return false;
  for (; is_digit(p[i]); i++) lo = lo * 10 + (p[i] - '0');
  bool unbounded = false;
  if (p[i] == ',') {
    i++;
    if (is_digit(p[i])) {
      hi = 0;
      for (; is_digit(p[i]); i++) hi = hi * 10 + (p[i] - '0');
    } else {
      unbounded = true;
    }
  }
  if (p[i] != '}') return false;
  double n = hi > lo ? hi : lo;
  *copies = (n < 1 ? 1 : n) + (unbounded ? 1 : 0);
  *len = i + 2;
  return true;
}

/* Skips a bracket expression starting at '[' (a ']' first is literal; [:x:], [.x.] and
 * [=x=] may hold a ']'). */
static void skip_bracket(scan_t *s) {
  const char *p = s->p;
  size_t i = s->at + 1;
  if (p[i] == '^') i++;
  if (p[i] == ']') i++;
  while (p[i] != '\0' && p[i] != ']') {
    if (p[i] == '[' && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
      char end = p[i + 1];
      i += 2;
      while (p[i] != '\0' && !(p[i] == end && p[i + 1] == ']')) i++;
      if (p[i] != '\0') i += 2;
      continue;
    }
    i++;
  }
  s->at = p[i] == ']' ? i + 1 : i;
}

static double scan_alternatives(scan_t *s);

/* A sequence of pieces up to '|', ')' or the end: the sum of their expanded sizes. */
static double scan_sequence(scan_t *s) {
  double total = 0, last = 0;
  int stacked = 0; /* quantifiers since the last piece */
  for (;;) {
    char c = s->p[s->at];
    /* Outside every group glibc's ERE takes ')' as an ordinary character, so quantifiers
     * after it multiply it like any other piece. */
    if (c == '\0' || c == '|' || (c == ')' && s->depth > 0)) return total;
    double copies = 0;
    size_t len = 1;
    if (c == '*' || c == '?') copies = 1;
    else if (c == '+') copies = 2;
    else if (c == '{' && !parse_bound(s, &copies, &len)) copies = 0;
    if (copies > 0) {
      /* Stacked quantifiers mean nothing more than one does, but each adds a level of
       * empty transitions whose closure glibc computes at a cost far above the element
       * count (49 '?' between '+'s took minutes): refused beyond a few. */
      if (++stacked > RC_REGEX_MAX_STACKED) {
        s->too_stacked = true;
        return total;
      }
      /* A quantifier multiplies the piece before it, quantifiers included. */
      total += last * (copies - 1);
      last *= copies;
      s->at += len;
      continue;
    }
    double cost = 1;
    if (c == '(') {
      s->at++;
      if (++s->depth > RC_REGEX_MAX_DEPTH) {
        s->too_deep = true;
        return total;
      }
      cost += scan_alternatives(s);
      s->depth--;
      if (s->too_deep || s->too_stacked) return total;
      if (s->p[s->at] == ')') s->at++;
    } else if (c == '[') {
      skip_bracket(s);
    } else if (c == '\\') {
      s->at += s->p[s->at + 1] != '\0' ? 2 : 1;
    } else {
      s->at++;
    }
    last = cost;
    total += cost;
    stacked = 0;
  }
}

static double scan_alternatives(scan_t *s) {
  double total = scan_sequence(s);
  while (!s->too_deep && !s->too_stacked && s->p[s->at] == '|') {
    s->at++;
    total += scan_sequence(s);
  }
  return total;
}

int rc_regex_compile(regex_t *re, const char *pattern, int cflags, rc_error_t *err) {
  if (pattern == NULL) return rc_error_set(err, "no regular expression given");
  scan_t s = {.p = pattern};
  double size = 0;
  size += scan_alternatives(&s); /* at depth 0 it reads up to the end */
  if (s.too_deep)
    return rc_error_set(err, "regular expression has groups nested deeper than %d",
                        RC_REGEX_MAX_DEPTH);
  if (s.too_stacked)
    return rc_error_set(err,
                        "regular expression stacks more than %d quantifiers on one piece "
                        "(at offset %zu); one is enough",
                        RC_REGEX_MAX_STACKED, s.at);
  if (size > RC_REGEX_MAX_EXPANSION)
    return rc_error_set(err,
                        "regular expression would expand to more than %d elements "
                        "(quantifiers applied to quantifiers, or large repeat counts)",
                        RC_REGEX_MAX_EXPANSION);
  int rc = regcomp(re, pattern, cflags);
  if (rc != 0) {
    char why[256];
    regerror(rc, re, why, sizeof why);
    return rc_error_set(err, "%s", why);
  }
  return 0;
}

#include "selection.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

typedef struct term {
  char *text; /* without the leading '!' */
  bool negated;
} term_t;

struct selection {
  term_t *terms;
  size_t count;
  size_t positives;
};

static const char TAG_PREFIX[] = "tag:";

void selection_destroy(selection_t *selection) {
  if (selection == NULL) return;
  for (size_t i = 0; i < selection->count; i++) free(selection->terms[i].text);
  free(selection->terms);
  free(selection);
}

static bool is_blank(const char *s) {
  for (; *s; s++)
    if (!isspace((unsigned char)*s)) return false;
  return true;
}

selection_t *selection_create(const char *const *selectors, size_t count, rc_error_t *err) {
  selection_t *s = calloc(1, sizeof *s);
  if (s == NULL || (count > 0 && (s->terms = calloc(count, sizeof *s->terms)) == NULL)) {
    free(s);
    rc_error_set(err, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < count; i++) {
    const char *text = selectors[i] != NULL ? selectors[i] : "";
    bool negated = text[0] == '!';
    const char *body = negated ? text + 1 : text;
    const char *problem = NULL;
    if (is_blank(text))
      problem = "empty selector";
    else if (body[0] == '\0')
      problem = "'!' needs a selector after it (e.g. '!tag:slow')";
    else if (body[0] == '!')
      problem = "double negation is not supported";
    else if (is_blank(body))
      problem = "empty selector after '!'";
    else if (strncmp(body, TAG_PREFIX, sizeof TAG_PREFIX - 1) == 0 &&
             is_blank(body + sizeof TAG_PREFIX - 1))
      problem = "empty tag name (expected tag:NAME)";
    if (problem != NULL) {
      rc_error_set(err, "selector '%s': %s", text, problem);
      selection_destroy(s);
      return NULL;
    }
    s->terms[i].text = strdup(body);
    s->terms[i].negated = negated;
    s->count = i + 1;
    if (s->terms[i].text == NULL) {
      rc_error_set(err, "out of memory");
      selection_destroy(s);
      return NULL;
    }
    if (!negated) s->positives++;
  }
  return s;
}

bool selection_has_tag(const char *tags, const char *tag) {
  if (tags == NULL || tag == NULL) return false;
  size_t want = strlen(tag);
  const char *p = tags;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    const char *start = p;
    while (*p && *p != ',') p++;
    const char *end = p;
    while (end > start && end[-1] == ' ') end--;
    if ((size_t)(end - start) == want && want > 0 && strncmp(start, tag, want) == 0) return true;
  }
  return false;
}

bool selection_term_matches(const char *term, const char *id, const char *tags) {
  if (strncmp(term, TAG_PREFIX, sizeof TAG_PREFIX - 1) == 0)
    return selection_has_tag(tags, term + sizeof TAG_PREFIX - 1);
  if (strcmp(term, id) == 0) return true;
  size_t n = strlen(term);
  if (n > 0 && strncmp(term, id, n) == 0 && (term[n - 1] == '/' || id[n] == '/')) return true;
  return strpbrk(term, "*?[") != NULL && fnmatch(term, id, 0) == 0;
}

bool selection_matches(const selection_t *selection, const rc_test_def_t *def) {
  bool included = selection->positives == 0;
  for (size_t i = 0; i < selection->count; i++) {
    const term_t *t = &selection->terms[i];
    if (t->negated || included) continue;
    included = selection_term_matches(t->text, def->id, def->tags);
  }
  if (!included) return false;
  for (size_t i = 0; i < selection->count; i++) {
    const term_t *t = &selection->terms[i];
    if (t->negated && selection_term_matches(t->text, def->id, def->tags)) return false;
  }
  return true;
}

int selection_check_unmatched(const selection_t *selection, const rc_test_def_t *rows, size_t n,
                              rc_error_t *err) {
  for (size_t i = 0; i < selection->count; i++) {
    const term_t *t = &selection->terms[i];
    bool found = false;
    for (size_t r = 0; r < n && !found; r++)
      found = selection_term_matches(t->text, rows[r].id, rows[r].tags);
    if (!found)
      return rc_error_set(err, "no test matches the selector '%s%s'; see `replcheck list`",
                          t->negated ? "!" : "", t->text);
  }
  return 0;
}

size_t selection_apply(const selection_t *selection, const rc_test_def_t *rows, size_t n,
                       const rc_test_def_t **out) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    if (selection_matches(selection, &rows[i])) out[count++] = &rows[i];
  return count;
}

/* A decimal number in 1..max with nothing else around it. */
static bool parse_count(const char *s, size_t len, unsigned max, unsigned *out) {
  if (len == 0 || len > 6) return false;
  unsigned v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v < 1 || v > max) return false;
  *out = v;
  return true;
}

int selection_parse_shard(const char *text, unsigned *k, unsigned *n, rc_error_t *err) {
  const unsigned max = 10000;
  const char *slash = text != NULL ? strchr(text, '/') : NULL;
  unsigned kv = 0, nv = 0;
  if (slash == NULL || !parse_count(text, (size_t)(slash - text), max, &kv) ||
      !parse_count(slash + 1, strlen(slash + 1), max, &nv))
    return rc_error_set(err, "expected K/N with 1 <= K <= N <= %u (e.g. 2/4), got '%s'", max,
                        text != NULL ? text : "");
  if (kv > nv)
    return rc_error_set(err, "shard %u/%u: K must not exceed N (shards are numbered 1..%u)", kv, nv,
                        nv);
  *k = kv;
  *n = nv;
  return 0;
}

size_t selection_shard(const rc_test_def_t **rows, size_t count, unsigned k, unsigned n) {
  if (n <= 1) return count;
  size_t kept = 0;
  for (size_t i = 0; i < count; i++)
    if (i % n == (size_t)(k - 1)) rows[kept++] = rows[i];
  return kept;
}

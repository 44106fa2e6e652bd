#include "expected_failures.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A list file is a few lines typed by a person; anything this big is a mistake. */
#define EXPECTED_FAILURES_MAX_BYTES (1 << 20)

void expected_failures_destroy(expected_failures_t *list) {
  if (list == NULL) return;
  for (size_t i = 0; i < list->count; i++) {
    free(list->entries[i].pattern);
    free(list->entries[i].reason);
  }
  free(list->entries);
  free(list->path);
  free(list);
}

static bool is_space(char c) {
  return c == ' ' || c == '\t';
}

/* Parses one line (without its line end); appends an entry unless the line is blank or
 * a comment. Returns 0 or -1 with err. */
static int parse_line(expected_failures_t *list, const char *line, size_t len, int number,
                      rc_error_t *err) {
  const char *path = list->path;
  if (len > 0 && line[len - 1] == '\r') len--;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)line[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return rc_error_set(err, "%s:%d: control character 0x%02x in the line", path, number, c);
  }
  size_t p = 0;
  while (p < len && is_space(line[p])) p++;
  if (p == len || line[p] == '#') return 0;
  size_t start = p;
  while (p < len && !is_space(line[p])) p++;
  size_t pattern_len = p - start;
  while (p < len && is_space(line[p])) p++;
  size_t end = len;
  while (end > p && is_space(line[end - 1])) end--;
  const char *pattern = line + start;
  if (pattern[0] == '!')
    return rc_error_set(err,
                        "%s:%d: '%.*s': negation is not supported here; list the tests "
                        "that are expected to fail",
                        path, number, (int)pattern_len, pattern);
  if (pattern_len > 4 && strncmp(pattern, "tag:", 4) == 0)
    return rc_error_set(err,
                        "%s:%d: '%.*s': tags are not supported here; give a test id or "
                        "a glob over ids",
                        path, number, (int)pattern_len, pattern);
  if (end == p)
    return rc_error_set(err,
                        "%s:%d: '%.*s' has no reason; write one after it (an explanation "
                        "or an issue link)",
                        path, number, (int)pattern_len, pattern);
  for (size_t i = 0; i < list->count; i++) {
    if (strlen(list->entries[i].pattern) == pattern_len &&
        strncmp(list->entries[i].pattern, pattern, pattern_len) == 0)
      return rc_error_set(err, "%s:%d: '%.*s' is already listed at line %d", path, number,
                          (int)pattern_len, pattern, list->entries[i].line);
  }
  expected_failure_t *grown = realloc(list->entries, (list->count + 1) * sizeof *grown);
  if (grown == NULL) return rc_error_set(err, "%s: out of memory", path);
  list->entries = grown;
  expected_failure_t *e = &list->entries[list->count];
  e->pattern = strndup(pattern, pattern_len);
  e->reason = strndup(line + p, end - p);
  e->line = number;
  if (e->pattern == NULL || e->reason == NULL) {
    free(e->pattern);
    free(e->reason);
    return rc_error_set(err, "%s: out of memory", path);
  }
  list->count++;
  return 0;
}

expected_failures_t *expected_failures_parse(const char *path, const char *text, size_t len,
                                             rc_error_t *err) {
  expected_failures_t *list = calloc(1, sizeof *list);
  if (list == NULL || (list->path = strdup(path)) == NULL) {
    free(list);
    rc_error_set(err, "%s: out of memory", path);
    return NULL;
  }
  size_t start = 0;
  int number = 1;
  while (start < len) {
    const char *nl = memchr(text + start, '\n', len - start);
    size_t end = nl != NULL ? (size_t)(nl - text) : len;
    const char *nul = memchr(text + start, '\0', end - start);
    int rc = nul != NULL
                 ? rc_error_set(err, "%s:%d: NUL byte in the line (not a text file?)", path, number)
                 : parse_line(list, text + start, end - start, number, err);
    if (rc != 0) {
      expected_failures_destroy(list);
      return NULL;
    }
    start = end + 1;
    number++;
  }
  return list;
}

expected_failures_t *expected_failures_load(const char *path, rc_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    rc_error_set(err, "%s: cannot read the expected-failures file: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  bool too_big = false, failed = buf == NULL;
  while (!failed) {
    if (len == cap) {
      if (cap >= EXPECTED_FAILURES_MAX_BYTES) {
        too_big = true;
        break;
      }
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) {
        failed = true;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) {
      failed = ferror(f) != 0;
      break;
    }
  }
  int saved = errno;
  fclose(f);
  expected_failures_t *list = NULL;
  if (too_big)
    rc_error_set(err, "%s: larger than %d bytes; not an expected-failures list", path,
                 EXPECTED_FAILURES_MAX_BYTES);
  else if (failed)
    rc_error_set(err, "%s: cannot read the expected-failures file: %s", path,
                 buf == NULL ? "out of memory" : strerror(saved));
  else
    list = expected_failures_parse(path, buf, len, err);
  free(buf);
  return list;
}

static bool entry_matches(const expected_failure_t *e, const char *id) {
  return strcmp(e->pattern, id) == 0 || fnmatch(e->pattern, id, 0) == 0;
}

int expected_failures_check_stale(const expected_failures_t *list, const rc_test_def_t *rows,
                                  size_t n, rc_error_t *err) {
  int rc = 0;
  size_t used = 0;
  for (size_t i = 0; i < list->count; i++) {
    const expected_failure_t *e = &list->entries[i];
    bool found = false;
    for (size_t r = 0; r < n && !found; r++) found = entry_matches(e, rows[r].id);
    if (found) continue;
    if (err != NULL && used < sizeof err->msg) {
      int w = snprintf(err->msg + used, sizeof err->msg - used,
                       "%s%s:%d: '%s' matches no test in the registry (stale entry?)",
                       rc != 0 ? "\n" : "", list->path, e->line, e->pattern);
      if (w > 0) used += (size_t)w;
    }
    rc = -1;
  }
  return rc;
}

const expected_failure_t *expected_failures_find(const expected_failures_t *list, const char *id) {
  if (list == NULL) return NULL;
  for (size_t i = 0; i < list->count; i++)
    if (entry_matches(&list->entries[i], id)) return &list->entries[i];
  return NULL;
}

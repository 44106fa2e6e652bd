#include "listing.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "run_plan.h"

int listing_format_from_name(const char *name, listing_format_t *out) {
  static const struct {
    const char *name;
    listing_format_t format;
  } formats[] = {{"text", LISTING_TEXT}, {"markdown", LISTING_MARKDOWN}, {"json", LISTING_JSON}};
  for (size_t i = 0; name != NULL && i < sizeof formats / sizeof formats[0]; i++) {
    if (strcmp(name, formats[i].name) == 0) {
      *out = formats[i].format;
      return 0;
    }
  }
  return -1;
}

static const char *level_name(rc_level_t level) {
  return level == RC_LEVEL_MUST ? "MUST" : level == RC_LEVEL_SHOULD ? "SHOULD" : "?";
}

static void write_text(FILE *out, const rc_test_def_t *const *rows, size_t n,
                       const profile_t *profile) {
  for (size_t i = 0; i < n; i++) {
    const rc_test_def_t *d = rows[i];
    char dialects[32], transports[32], why[512];
    const char *skip = profile ? run_plan_skip_reason(d, profile, why, sizeof why) : NULL;
    fprintf(out, "%-44s %-6s %-14s %-11s %-9s %s%s%s%s\n", d->id, level_name(d->level),
            d->requirements, registry_dialects_text(d->dialects, dialects, sizeof dialects),
            registry_transports_text(d->transports, transports, sizeof transports), d->requirement,
            skip ? "  [skip: " : "", skip ? skip : "", skip ? "]" : "");
  }
  fprintf(out, "%zu tests\n", n);
}

/* A Markdown table cell: '|' escaped, backslashes kept visible, line breaks as spaces. */
static void put_cell(FILE *out, const char *text) {
  fputc(' ', out);
  for (const char *p = text ? text : ""; *p; p++) {
    if (*p == '|')
      fputs("\\|", out);
    else if (*p == '\n' || *p == '\r' || *p == '\t')
      fputc(' ', out);
    else
      fputc(*p, out);
  }
  fputs(" |", out);
}

static void write_markdown(FILE *out, const rc_test_def_t *const *rows, size_t n) {
  fputs(
      "| id | level | requirements | dialects | transports | tags | requirement | source |\n"
      "| --- | --- | --- | --- | --- | --- | --- | --- |\n",
      out);
  for (size_t i = 0; i < n; i++) {
    const rc_test_def_t *d = rows[i];
    char dialects[32], transports[32];
    fputc('|', out);
    put_cell(out, d->id);
    put_cell(out, level_name(d->level));
    put_cell(out, d->requirements);
    put_cell(out, registry_dialects_text(d->dialects, dialects, sizeof dialects));
    put_cell(out, registry_transports_text(d->transports, transports, sizeof transports));
    put_cell(out, d->tags);
    put_cell(out, d->requirement);
    put_cell(out, d->source);
    fputc('\n', out);
  }
}

/* "a, b,c" -> ["a", "b", "c"]; NULL or empty -> []. */
static json_t *split_list(const char *text) {
  json_t *array = json_array();
  const char *p = text ? text : "";
  while (array != NULL && *p) {
    while (*p == ' ' || *p == ',') p++;
    const char *start = p;
    while (*p && *p != ',') p++;
    const char *end = p;
    while (end > start && end[-1] == ' ') end--;
    if (end > start) json_array_append_new(array, json_stringn(start, (size_t)(end - start)));
  }
  return array;
}

static json_t *row_json(const rc_test_def_t *d, const profile_t *profile) {
  char dialects[32], transports[32], why[512];
  json_t *o = json_object();
  if (o == NULL) return NULL;
  json_object_set_new(o, "id", json_string(d->id));
  json_object_set_new(o, "level", json_string(level_name(d->level)));
  json_object_set_new(o, "requirements", split_list(d->requirements));
  json_object_set_new(o, "dialects",
                      split_list(registry_dialects_text(d->dialects, dialects, sizeof dialects)));
  json_object_set_new(
      o, "transports",
      split_list(registry_transports_text(d->transports, transports, sizeof transports)));
  json_object_set_new(o, "tags", split_list(d->tags));
  json_object_set_new(o, "requirement", json_string(d->requirement ? d->requirement : ""));
  json_object_set_new(o, "source", json_string(d->source ? d->source : ""));
  json_object_set_new(o, "file", json_string(registry_relative_file(d)));
  json_object_set_new(o, "line", json_integer(d->line));
  if (profile != NULL) {
    const char *skip = run_plan_skip_reason(d, profile, why, sizeof why);
    json_object_set_new(o, "applies", json_boolean(skip == NULL));
    json_object_set_new(o, "skip_reason", skip ? json_string(skip) : json_null());
  }
  return o;
}

static int write_json(FILE *out, const rc_test_def_t *const *rows, size_t n,
                      const profile_t *profile, rc_error_t *err) {
  json_t *array = json_array();
  for (size_t i = 0; array != NULL && i < n; i++) {
    json_t *row = row_json(rows[i], profile);
    if (row == NULL || json_array_append_new(array, row) != 0) {
      json_decref(array);
      array = NULL;
    }
  }
  if (array == NULL) return rc_error_set(err, "list: out of memory");
  int rc = json_dumpf(array, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(array);
  if (rc != 0) return rc_error_set(err, "list: cannot write the JSON listing");
  fputc('\n', out);
  return 0;
}

int listing_write(FILE *out, listing_format_t format, const rc_test_def_t *const *rows, size_t n,
                  const profile_t *profile, rc_error_t *err) {
  int rc = 0;
  switch (format) {
    case LISTING_TEXT:
      write_text(out, rows, n, profile);
      break;
    case LISTING_MARKDOWN:
      write_markdown(out, rows, n);
      break;
    case LISTING_JSON:
      rc = write_json(out, rows, n, profile, err);
      break;
    default:
      return rc_error_set(err, "list: unknown format %d", (int)format);
  }
  if (rc == 0 && (fflush(out) != 0 || ferror(out)))
    return rc_error_set(err, "list: cannot write the listing: %s", strerror(errno));
  return rc;
}

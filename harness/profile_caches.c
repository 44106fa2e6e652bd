/* profile_caches: the "caches" part of a profile (role caches): the SUT's expiring
 * caches, how the cache suite inserts an entry and reads it back (docs/PROFILES.md). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_internal.h"

/* A cache bound the suites can fill (CA-05 inserts max_len + 5 entries). */
#define PROFILE_CACHE_MAX_LEN 100000

static const char *const ROW_PLACEHOLDERS[] = {"n", NULL};
static const char *const READ_URL_PLACEHOLDERS[] = {"key", NULL};

/* obj[key] as an integer in 0..max into *out; required. */
static int take_count(const profile_loader_t *ld, json_t *obj, const char *key, const char *prefix,
                      json_int_t max, int *out) {
  char field[96];
  snprintf(field, sizeof field, "%s.%s", prefix, key);
  json_t *value = json_object_get(obj, key);
  if (value == NULL)
    return profile_fail(ld, field, "missing, expected an integer in 0..%lld", (long long)max);
  if (!json_is_integer(value))
    return profile_fail(ld, field, "expected an integer in 0..%lld, got %s", (long long)max,
                        profile_json_type(value));
  if (json_integer_value(value) < 0 || json_integer_value(value) > max)
    return profile_fail(ld, field, "expected an integer in 0..%lld, got %lld", (long long)max,
                        (long long)json_integer_value(value));
  *out = (int)json_integer_value(value);
  return 0;
}

/* The template with {n} = counter and every other placeholder = "x". */
static char *render_with_counter(const char *text, const char *counter) {
  profile_var_t vars[PROFILE_PLACEHOLDER_MAX + 1];
  size_t count = 0;
  for (size_t i = 0; PROFILE_PLACEHOLDERS[i] != NULL && count < PROFILE_PLACEHOLDER_MAX; i++)
    vars[count++] = (profile_var_t){PROFILE_PLACEHOLDERS[i], "x"};
  vars[count++] = (profile_var_t){"n", counter};
  rc_error_t terr;
  size_t offset = 0;
  return profile_render(text, vars, count, NULL, NULL, &offset, &terr);
}

/* A template that must use {n}, so that every insert makes a new entry. */
static int check_uses_counter(const profile_loader_t *ld, const char *field, const char *text) {
  char *with_a = render_with_counter(text, "a");
  char *with_b = render_with_counter(text, "b");
  bool varies = with_a != NULL && with_b != NULL && strcmp(with_a, with_b) != 0;
  free(with_a);
  free(with_b);
  if (!varies)
    return profile_fail(
        ld, field, "must contain {n} (the insert counter), so that each insert is a new entry");
  return 0;
}

static int load_cache_insert(const profile_loader_t *ld, json_t *insert, const char *prefix,
                             profile_cache_t *c) {
  static const char *const keys[] = {"stream", "row", "key", NULL};
  char field[96], stream_field[112], row_field[112], key_field[112];
  snprintf(field, sizeof field, "%s.insert", prefix);
  snprintf(stream_field, sizeof stream_field, "%s.stream", field);
  snprintf(row_field, sizeof row_field, "%s.row", field);
  snprintf(key_field, sizeof key_field, "%s.key", field);
  if (insert == NULL)
    return profile_fail(ld, field, "missing, expected {\"stream\": ..., \"row\": ...}");
  if (!json_is_object(insert))
    return profile_fail(ld, field, "expected an object, got %s", profile_json_type(insert));
  if (profile_check_keys(ld, insert, field, keys) != 0 ||
      profile_take_string(ld, json_object_get(insert, "stream"), stream_field, FIELD_REQUIRED,
                          &c->insert_stream) != 0 ||
      profile_take_template(ld, json_object_get(insert, "row"), row_field,
                            FIELD_REQUIRED | FIELD_TEMPLATE, ROW_PLACEHOLDERS,
                            &c->insert_row) != 0 ||
      profile_take_template(ld, json_object_get(insert, "key"), key_field, FIELD_TEMPLATE,
                            ROW_PLACEHOLDERS, &c->insert_key) != 0)
    return -1;
  if (strcspn(c->insert_stream, " \t\r\n") != strlen(c->insert_stream))
    return profile_fail(ld, stream_field, "a stream name has no blanks, got \"%s\"",
                        c->insert_stream);
  if (check_uses_counter(ld, row_field, c->insert_row) != 0 ||
      (c->insert_key != NULL && check_uses_counter(ld, key_field, c->insert_key) != 0))
    return -1;
  /* The row goes on the wire as RDATA's JSON: it must be JSON whatever fills it. */
  rc_error_t terr;
  size_t offset = 0;
  char *row = profile_render(c->insert_row, NULL, 0, "0", ROW_PLACEHOLDERS, &offset, &terr);
  json_error_t jerr;
  json_t *parsed = row != NULL ? json_loads(row, JSON_DECODE_ANY, &jerr) : NULL;
  int rc = 0;
  if (parsed == NULL)
    rc = profile_fail(ld, row_field, "not valid JSON once {n} is filled in (\"%.200s\"): %s",
                      row ? row : c->insert_row, row ? jerr.text : terr.msg);
  json_decref(parsed);
  free(row);
  return rc;
}

static int load_cache(const profile_loader_t *ld, json_t *item, size_t index, profile_cache_t *c) {
  static const char *const keys[] = {"name",   "expiry_ms", "max_len", "reset_on_get",
                                     "insert", "read_url",  NULL};
  char prefix[64], name_field[80], flag_field[96], url_field[96];
  snprintf(prefix, sizeof prefix, "caches[%zu]", index);
  snprintf(name_field, sizeof name_field, "%s.name", prefix);
  snprintf(flag_field, sizeof flag_field, "%s.reset_on_get", prefix);
  snprintf(url_field, sizeof url_field, "%s.read_url", prefix);
  if (!json_is_object(item))
    return profile_fail(ld, prefix, "expected an object describing a cache, got %s",
                        profile_json_type(item));
  if (profile_check_keys(ld, item, prefix, keys) != 0 ||
      profile_take_string(ld, json_object_get(item, "name"), name_field, FIELD_REQUIRED,
                          &c->name) != 0 ||
      take_count(ld, item, "expiry_ms", prefix, PROFILE_TIMING_MAX_MS, &c->expiry_ms) != 0 ||
      take_count(ld, item, "max_len", prefix, PROFILE_CACHE_MAX_LEN, &c->max_len) != 0 ||
      load_cache_insert(ld, json_object_get(item, "insert"), prefix, c) != 0 ||
      profile_take_template(ld, json_object_get(item, "read_url"), url_field, FIELD_TEMPLATE,
                            READ_URL_PLACEHOLDERS, &c->read_url) != 0 ||
      profile_check_url(ld, url_field, c->read_url) != 0)
    return -1;
  for (const char *ch = c->name; *ch != '\0'; ch++)
    if (isspace((unsigned char)*ch) || iscntrl((unsigned char)*ch) || *ch == '"')
      return profile_fail(ld, name_field,
                          "must not contain blanks, quotes or control characters, got \"%s\"",
                          c->name);
  json_t *flag = json_object_get(item, "reset_on_get");
  if (flag != NULL && !json_is_boolean(flag))
    return profile_fail(ld, flag_field, "expected true or false, got %s", profile_json_type(flag));
  c->reset_on_get = flag != NULL && json_is_true(flag);
  if (c->read_url != NULL && strstr(c->read_url, "{key}") == NULL)
    return profile_fail(ld, url_field, "must contain {key}, the key of the entry to read");
  if (c->read_url != NULL && c->insert_key == NULL)
    return profile_fail(ld, url_field, "needs %s.insert.key, the key an inserted entry gets",
                        prefix);
  return 0;
}

int profile_load_caches(const profile_loader_t *ld, json_t *root) {
  profile_t *p = ld->profile;
  json_t *list = json_object_get(root, "caches");
  bool role = (p->roles & PROFILE_ROLE_CACHES) != 0;
  if (list == NULL)
    return role ? profile_fail(
                      ld, "caches",
                      "missing: role \"caches\" needs the list of the SUT's expiring caches")
                : 0;
  if (!json_is_array(list) || json_array_size(list) == 0)
    return profile_fail(ld, "caches", "expected a non-empty array of cache objects, got %s",
                        json_is_array(list) ? "an empty array" : profile_json_type(list));
  if (!role) return profile_fail(ld, "caches", "only meaningful with role \"caches\" in 'roles'");
  p->caches = calloc(json_array_size(list), sizeof *p->caches);
  if (p->caches == NULL) return profile_fail(ld, NULL, "out of memory");
  size_t index;
  json_t *item;
  json_array_foreach(list, index, item) {
    p->cache_count = index + 1; /* freed by profile_destroy even when half-loaded */
    if (load_cache(ld, item, index, &p->caches[index]) != 0) return -1;
    for (size_t j = 0; j < index; j++) {
      if (strcmp(p->caches[j].name, p->caches[index].name) != 0) continue;
      char field[80];
      snprintf(field, sizeof field, "caches[%zu].name", index);
      return profile_fail(ld, field, "\"%s\" is already caches[%zu]", p->caches[index].name, j);
    }
  }
  return 0;
}
void profile_free_caches(profile_t *profile) {
  for (size_t i = 0; i < profile->cache_count; i++) {
    profile_cache_t *c = &profile->caches[i];
    free(c->name);
    free(c->insert_stream);
    free(c->insert_row);
    free(c->insert_key);
    free(c->read_url);
  }
  free(profile->caches);
}

#include "stream_rows.h"

#include <stdio.h>
#include <string.h>
#include <jansson.h>

typedef struct row_layout {
  const char *stream;
  const char *const *fields; /* NULL-ended names, as the upstream namedtuple has them */
  size_t min_fields;         /* fewer: "missing argument" */
  size_t max_fields;         /* more: "takes N positional arguments" (0: no bound) */
} row_layout_t;

static const char *const typing_fields[] = {"room_id", "user_ids", NULL};
static const char *const device_fields[] = {"user_id", "destination", NULL};

static const row_layout_t layouts[] = {
    {"typing", typing_fields, 2, 2},
    {"device_lists", device_fields, 1, 0},
};

static const row_layout_t *layout_find(const char *stream) {
  for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
    if (strcmp(layouts[i].stream, stream) == 0) return &layouts[i];
  return NULL;
}

/* Python's wording for a namedtuple built with the wrong number of fields. */
static int raise_arity(const row_layout_t *layout, size_t got, handler_error_t *error) {
  if (got < layout->min_fields) {
    size_t missing = layout->min_fields - got;
    char names[128] = "";
    size_t used = 0;
    for (size_t i = got; i < layout->min_fields && used < sizeof names; i++) {
      int n = snprintf(names + used, sizeof names - used, "%s'%s'",
                       i == got ? "" : (i + 1 == layout->min_fields ? " and " : ", "),
                       layout->fields[i]);
      if (n < 0) break;
      used += (size_t)n;
    }
    return HANDLER_RAISE(error, "TypeError",
                         "__new__() missing %zu required positional argument%s: %s", missing,
                         missing == 1 ? "" : "s", names);
  }
  return HANDLER_RAISE(error, "TypeError",
                       "__new__() takes %zu positional arguments but %zu were given",
                       layout->max_fields + 1, got + 1);
}

static int check_typing(json_t *row, handler_error_t *error) {
  if (!json_is_string(json_array_get(row, 0)))
    return HANDLER_RAISE(error, "TypeError", "typing row: room_id must be a string");
  json_t *users = json_array_get(row, 1);
  if (!json_is_array(users))
    return HANDLER_RAISE(error, "TypeError", "typing row: user_ids must be a list");
  for (size_t i = 0; i < json_array_size(users); i++)
    if (!json_is_string(json_array_get(users, i)))
      return HANDLER_RAISE(error, "TypeError", "typing row: user_ids[%zu] must be a string", i);
  return 0;
}

int stream_rows_check(const char *stream, const char *row, size_t len, handler_error_t *error) {
  const row_layout_t *layout = layout_find(stream);
  if (layout == NULL) return 0;
  json_error_t jerr;
  json_t *value = json_loadb(row, len, JSON_DECODE_ANY, &jerr);
  if (value == NULL)
    return HANDLER_RAISE(error, "ValueError", "%s row is not JSON: %s", stream, jerr.text);
  int rc = 0;
  if (!json_is_array(value)) {
    rc = HANDLER_RAISE(error, "TypeError", "%s row must be a list, got %s", stream,
                       json_is_object(value) ? "an object" : "a scalar");
  } else {
    size_t count = json_array_size(value);
    if (count < layout->min_fields || (layout->max_fields > 0 && count > layout->max_fields))
      rc = raise_arity(layout, count, error);
    else if (layout->fields == typing_fields)
      rc = check_typing(value, error);
    else if (!json_is_string(json_array_get(value, 0)))
      rc = HANDLER_RAISE(error, "TypeError", "%s row: user_id must be a string", stream);
  }
  json_decref(value);
  return rc;
}

int stream_rows_device_user(const char *row, size_t len, char *buf, size_t cap) {
  if (stream_rows_check("device_lists", row, len, NULL) != 0) return -1;
  json_t *value = json_loadb(row, len, JSON_DECODE_ANY, NULL);
  const char *user = value != NULL ? json_string_value(json_array_get(value, 0)) : NULL;
  int rc = -1;
  if (user != NULL && strlen(user) < cap) {
    memcpy(buf, user, strlen(user) + 1);
    rc = 0;
  }
  json_decref(value);
  return rc;
}

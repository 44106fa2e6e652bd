/* The body check of http_catchup.h: a get_repl_stream_updates answer must have exactly
 * the shape Synapse's ReplicationGetStreamUpdates sends (spec §7), and tokens that make
 * sense for the request, before anything in it is applied. */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http_catchup.h"

static const char *json_kind(const json_t *value) {
  switch (json_typeof(value)) {
    case JSON_OBJECT:
      return "object";
    case JSON_ARRAY:
      return "array";
    case JSON_STRING:
      return "string";
    case JSON_INTEGER:
      return "integer";
    case JSON_REAL:
      return "number with a fraction or exponent";
    case JSON_TRUE:
    case JSON_FALSE:
      return "boolean";
    case JSON_NULL:
      return "null";
  }
  return "unknown";
}

void http_catchup_page_free(http_catchup_page_storage_t *storage) {
  if (storage == NULL) return;
  for (size_t i = 0; i < storage->count; i++) free((char *)storage->updates[i].row);
  free(storage->updates);
  storage->updates = NULL;
  storage->count = 0;
}

/* One [token, row] item; the row is kept as compact JSON text. */
static int parse_update(const json_t *item, size_t index, int64_t from, int64_t upto_token,
                        int64_t previous, http_catchup_update_t *out, rc_error_t *err) {
  if (!json_is_array(item) || json_array_size(item) != 2)
    return rc_error_set(err, "'updates'[%zu]: expected a [token, row] pair, got %s%s", index,
                        json_is_array(item) ? "an array of another length than 2, " : "",
                        json_is_array(item) ? "" : json_kind(item));
  const json_t *token = json_array_get(item, 0);
  const json_t *row = json_array_get(item, 1);
  if (!json_is_integer(token))
    return rc_error_set(err, "'updates'[%zu][0]: expected an integer token, got %s", index,
                        json_kind(token));
  int64_t value = (int64_t)json_integer_value(token);
  if (value <= from || value > upto_token)
    return rc_error_set(err,
                        "'updates'[%zu][0]: token %" PRId64 " is outside (from_token %" PRId64
                        ", upto_token %" PRId64 "]",
                        index, value, from, upto_token);
  if (value < previous)
    return rc_error_set(err,
                        "'updates'[%zu][0]: token %" PRId64 " comes after token %" PRId64
                        " (tokens must not decrease)",
                        index, value, previous);
  /* Synapse builds the stream's row tuple from it (ROW_TYPE(*row)): it must be a list. */
  if (!json_is_array(row))
    return rc_error_set(err, "'updates'[%zu][1]: expected the row as an array, got %s", index,
                        json_kind(row));
  char *text = json_dumps(row, JSON_COMPACT);
  if (text == NULL) return rc_error_set(err, "'updates'[%zu]: out of memory", index);
  out->token = value;
  out->row = text;
  return 0;
}

int http_catchup_parse_page(const char *body, size_t len, int64_t from, int64_t upto,
                            http_catchup_page_t *page, http_catchup_page_storage_t *storage,
                            rc_error_t *err) {
  memset(page, 0, sizeof *page);
  memset(storage, 0, sizeof *storage);
  json_error_t jerr;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    return rc_error_set(err, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                        jerr.column);
  int rc = -1;
  const json_t *updates = json_object_get(root, "updates");
  const json_t *upto_token = json_object_get(root, "upto_token");
  const json_t *limited = json_object_get(root, "limited");
  if (!json_is_object(root)) {
    rc_error_set(err, "expected a JSON object, got %s", json_kind(root));
  } else if (updates == NULL || !json_is_array(updates)) {
    rc_error_set(err, "'updates': expected an array, got %s",
                 updates ? json_kind(updates) : "nothing (missing)");
  } else if (upto_token == NULL || !json_is_integer(upto_token)) {
    rc_error_set(err, "'upto_token': expected an integer, got %s",
                 upto_token ? json_kind(upto_token) : "nothing (missing)");
  } else if (limited == NULL || !json_is_boolean(limited)) {
    rc_error_set(err, "'limited': expected a boolean, got %s",
                 limited ? json_kind(limited) : "nothing (missing)");
  } else {
    page->upto_token = (int64_t)json_integer_value(upto_token);
    page->limited = json_is_true(limited);
    if (page->upto_token < from || page->upto_token > upto) {
      rc_error_set(
          err, "'upto_token' %" PRId64 " is outside the requested range [%" PRId64 ", %" PRId64 "]",
          page->upto_token, from, upto);
    } else if (page->limited && page->upto_token <= from) {
      /* Asking again from the same token would loop for ever. */
      rc_error_set(err, "'limited' is true but 'upto_token' %" PRId64 " does not pass from_token",
                   page->upto_token);
    } else {
      rc = 0;
    }
  }
  size_t count = rc == 0 ? json_array_size(updates) : 0;
  if (rc == 0 && count > 0) {
    storage->updates = calloc(count, sizeof *storage->updates);
    if (storage->updates == NULL) rc = rc_error_set(err, "out of memory for %zu updates", count);
  }
  int64_t previous = from;
  for (size_t i = 0; rc == 0 && i < count; i++) {
    if (parse_update(json_array_get(updates, i), i, from, page->upto_token, previous,
                     &storage->updates[i], err) != 0) {
      rc = -1;
      break;
    }
    storage->count++;
    previous = storage->updates[i].token;
  }
  json_decref(root);
  if (rc != 0) {
    http_catchup_page_free(storage);
    memset(page, 0, sizeof *page);
    return -1;
  }
  page->updates = storage->updates;
  page->count = storage->count;
  return 0;
}

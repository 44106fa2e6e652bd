#include "stream_history.h"

#include <stdlib.h>
#include <string.h>

#include "text_fifo.h"

typedef struct stream {
  char *name;
  int64_t position;
  stream_row_t *rows; /* rows[start .. start+count) are live; compacted when half dead */
  size_t start;
  size_t count;
  size_t capacity;
  int64_t dropped_upto; /* highest token dropped for capacity (INT64_MIN if none) */
  text_fifo_t *texts;   /* the rows' JSON, tagged by row serial */
  uint64_t first_serial; /* serial of rows[start]; the next row's is first + count */
} stream_t;

struct stream_history {
  stream_t *streams;
  size_t count;
  size_t capacity;
  size_t last_found; /* emission appends to one stream many times in a row */
};

stream_history_t *stream_history_create(void) { return calloc(1, sizeof(stream_history_t)); }

void stream_history_destroy(stream_history_t *h) {
  if (h == NULL) return;
  for (size_t i = 0; i < h->count; i++) {
    stream_t *s = &h->streams[i];
    text_fifo_destroy(s->texts);
    free(s->rows);
    free(s->name);
  }
  free(h->streams);
  free(h);
}

/* Index of the stream called `name`, or h->count. The emitting path (append) asks for
 * the same stream many times in a row, so the last hit is tried first. */
static size_t find_index(const stream_history_t *h, const char *name) {
  if (h->last_found < h->count && strcmp(h->streams[h->last_found].name, name) == 0)
    return h->last_found;
  for (size_t i = 0; i < h->count; i++)
    if (strcmp(h->streams[i].name, name) == 0) return i;
  return h->count;
}

static const stream_t *find(const stream_history_t *h, const char *name) {
  size_t i = find_index(h, name);
  return i < h->count ? &h->streams[i] : NULL;
}

/* Like find, for the mutating calls, which also remember the hit. */
static stream_t *find_mut(stream_history_t *h, const char *name) {
  size_t i = find_index(h, name);
  if (i == h->count) return NULL;
  h->last_found = i;
  return &h->streams[i];
}

int stream_history_set(stream_history_t *h, const char *name, int64_t position) {
  stream_t *s = find_mut(h, name);
  if (s == NULL) {
    if (h->count == h->capacity) {
      size_t cap = h->capacity ? h->capacity * 2 : 16;
      stream_t *grown = realloc(h->streams, cap * sizeof *grown);
      if (grown == NULL) return -1;
      h->streams = grown;
      h->capacity = cap;
    }
    s = &h->streams[h->count];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    s->texts = text_fifo_create();
    if (s->name == NULL || s->texts == NULL) {
      free(s->name);
      text_fifo_destroy(s->texts);
      return -1;
    }
    s->dropped_upto = INT64_MIN;
    h->count++;
  }
  s->position = position;
  return 0;
}

bool stream_history_position(const stream_history_t *h, const char *name, int64_t *position) {
  const stream_t *s = find(h, name);
  if (s == NULL) return false;
  *position = s->position;
  return true;
}

size_t stream_history_count(const stream_history_t *h) { return h->count; }
const char *stream_history_name(const stream_history_t *h, size_t i) {
  return i < h->count ? h->streams[i].name : NULL;
}

int stream_history_append(stream_history_t *h, const char *name, int64_t token,
                          const char *json, size_t len) {
  stream_t *s = find_mut(h, name);
  if (s == NULL) return -1;
  if (s->count == STREAM_HISTORY_MAX_ROWS) {
    s->dropped_upto = s->rows[s->start].token;
    text_fifo_release_through(s->texts, s->first_serial++);
    s->start++;
    s->count--;
  }
  if (s->start + s->count == s->capacity) {
    if (s->start > s->capacity / 2) {
      memmove(s->rows, s->rows + s->start, s->count * sizeof *s->rows);
      s->start = 0;
    } else {
      size_t cap = s->capacity ? s->capacity * 2 : 64;
      stream_row_t *grown = realloc(s->rows, cap * sizeof *grown);
      if (grown == NULL) return -1;
      s->rows = grown;
      s->capacity = cap;
    }
  }
  char *copy = text_fifo_push(s->texts, json, len, s->first_serial + s->count);
  if (copy == NULL) return -1;
  s->rows[s->start + s->count++] = (stream_row_t){.token = token, .json = copy, .len = len};
  if (token > s->position) s->position = token;
  return 0;
}

const stream_row_t *stream_history_range(const stream_history_t *h, const char *name,
                                         int64_t from, int64_t upto, size_t limit,
                                         size_t *count, bool *limited, int64_t *upto_out,
                                         bool *truncated) {
  *count = 0;
  *limited = false;
  *upto_out = upto;
  *truncated = false;
  const stream_t *s = find(h, name);
  if (s == NULL) return NULL;
  *truncated = s->dropped_upto > from;
  const stream_row_t *rows = s->rows + s->start;
  size_t first = 0;
  while (first < s->count && rows[first].token <= from) first++;
  size_t end = first;
  while (end < s->count && rows[end].token <= upto) end++;
  size_t n = end - first;
  if (limit > 0 && n > limit) {
    size_t cut = limit;
    int64_t last = rows[first + cut - 1].token;
    if (rows[first + cut].token == last) {
      /* The page would split a run of equal tokens, which is one unit: end the page
       * before the run, or, if the run fills the page, include all of it. */
      size_t back = cut;
      while (back > 0 && rows[first + back - 1].token == last) back--;
      if (back > 0) {
        cut = back;
      } else {
        while (cut < n && rows[first + cut].token == last) cut++;
      }
    }
    *limited = cut < n;
    n = cut;
    if (*limited) *upto_out = rows[first + n - 1].token;
  }
  *count = n;
  return n > 0 ? rows + first : NULL;
}

#include "federation_probe.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_history.h"

bool federation_probe_open(rc_test_t *t, presence_scene_t *s) {
  presence_shape_t shape = {.remotes = 1, .local_users = 1, .users_per_remote = 1, .rooms = 1};
  return presence_scene_open(t, s, &shape);
}

bool federation_probe_emit(presence_scene_t *s, const char *const *before, size_t before_count,
                           const int *seqs, size_t seq_count, int64_t *token) {
  rc_test_t *t = s->t;
  int64_t position = 0;
  if (!stream_history_position(mockhs_history(t->mock), "federation", &position))
    return rc_error(t, "harness: the mock does not write the federation stream");
  size_t count = before_count + seq_count;
  mockhs_row_t *rows = calloc(count, sizeof *rows);
  char **texts = calloc(seq_count > 0 ? seq_count : 1, sizeof *texts);
  bool ok = rows != NULL && texts != NULL;
  for (size_t i = 0; ok && i < seq_count; i++)
    ok = asprintf(&texts[i],
                  "[\"e\",{\"origin\":\"%s\",\"destination\":\"%s\",\"edu_type\":\"%s\","
                  "\"content\":{\"seq\":%d}}]",
                  t->server_name, s->names[0], FEDERATION_PROBE_EDU, seqs[i]) >= 0;
  rc_error_t err = {0};
  int rc = -1;
  if (ok) {
    for (size_t i = 0; i < count; i++)
      rows[i] = (mockhs_row_t){.token = position + 1,
                               .json = i < before_count ? before[i] : texts[i - before_count]};
    rc = mockhs_emit(t->mock, "federation", rows, count, &err);
  }
  for (size_t i = 0; texts != NULL && i < seq_count; i++) free(texts[i]);
  free(texts);
  free(rows);
  if (!ok) return rc_error(t, "out of memory");
  if (rc != 0) return rc_error(t, "%s", err.msg);
  s->emitted = position + 1;
  if (token != NULL) *token = position + 1;
  return true;
}

size_t federation_probe_received(const presence_scene_t *s, int *out, size_t cap) {
  size_t n = 0;
  const fake_remote_t *remote = s->remotes[0];
  for (size_t i = 0; i < fake_remote_request_count(remote); i++) {
    json_t *edus = json_object_get(fake_remote_request(remote, i)->body, "edus");
    for (size_t k = 0; k < json_array_size(edus); k++) {
      json_t *edu = json_array_get(edus, k);
      const char *type = json_string_value(json_object_get(edu, "edu_type"));
      json_t *seq = json_object_get(json_object_get(edu, "content"), "seq");
      if (type == NULL || strcmp(type, FEDERATION_PROBE_EDU) != 0 || !json_is_integer(seq))
        continue;
      if (n < cap) out[n] = (int)json_integer_value(seq);
      n++;
    }
  }
  return n;
}

typedef struct probe_wait {
  presence_scene_t *s;
  size_t count;
} probe_wait_t;

static bool probes_arrived(void *arg) {
  probe_wait_t *w = arg;
  return federation_probe_received(w->s, NULL, 0) >= w->count;
}

bool federation_probe_wait(presence_scene_t *s, size_t count, int timeout_ms) {
  probe_wait_t w = {s, count};
  if (probes_arrived(&w)) return true;
  return mockhs_run_until(s->t->mock, probes_arrived, &w, timeout_ms > 0 ? timeout_ms : 1, 20);
}

const char *federation_probe_describe(const int *seqs, size_t n, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used + 1 < cap; i++) {
    int w = snprintf(buf + used, cap - used, "%s%d", i ? ", " : "", seqs[i]);
    if (w < 0) break;
    used = (size_t)w >= cap - used ? cap - 1 : used + (size_t)w;
  }
  if (n == 0) snprintf(buf, cap, "none");
  return buf;
}

#include "outcome.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int set_string(json_t *obj, const char *key, const char *value) {
  if (value == NULL) return 0;
  /* Evidence can hold any bytes the SUT sent; jansson needs valid UTF-8, so keep
   * what it accepts and mark the rest. */
  json_t *s = json_string(value);
  if (s == NULL) {
    size_t n = strlen(value);
    char *clean = malloc(n + 1);
    if (clean == NULL) return -1;
    for (size_t i = 0; i < n; i++) clean[i] = ((unsigned char)value[i] < 0x80) ? value[i] : '?';
    clean[n] = '\0';
    s = json_string(clean);
    free(clean);
  }
  return s != NULL ? json_object_set_new(obj, key, s) : -1;
}

int outcome_write(const char *path, const report_case_t *c, bool sut_start_failed,
                  rc_error_t *err) {
  json_t *obj = json_object();
  if (obj == NULL) return rc_error_set(err, "%s: out of memory", path);
  json_object_set_new(obj, "verdict", json_string(verdict_name(c->verdict)));
  json_object_set_new(obj, "seconds", json_real(c->seconds));
  json_object_set_new(obj, "sut_start_failed", json_boolean(sut_start_failed));
  set_string(obj, "message", c->message);
  set_string(obj, "expected", c->expected);
  set_string(obj, "actual", c->actual);
  set_string(obj, "evidence", c->evidence);
  set_string(obj, "output", c->output);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  int rc = json_dump_file(obj, tmp, JSON_COMPACT);
  json_decref(obj);
  if (rc != 0 || rename(tmp, path) != 0) {
    int saved = errno;
    unlink(tmp);
    return rc_error_set(err, "%s: cannot write the test outcome: %s", path, strerror(saved));
  }
  return 0;
}

static int get_string(json_t *obj, const char *key, char **field) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL) return report_set(field, NULL);
  if (!json_is_string(v)) return -1;
  return report_set(field, json_string_value(v));
}

int outcome_read(const char *path, report_case_t *c, bool *sut_start_failed, rc_error_t *err) {
  json_error_t jerr;
  json_t *obj = json_load_file(path, 0, &jerr);
  if (obj == NULL) return rc_error_set(err, "%s:%d: %s", path, jerr.line, jerr.text);
  json_t *verdict = json_object_get(obj, "verdict");
  json_t *seconds = json_object_get(obj, "seconds");
  int rc = 0;
  if (!json_is_string(verdict) || verdict_from_name(json_string_value(verdict), &c->verdict) != 0)
    rc = rc_error_set(err, "%s: field 'verdict' must be a verdict name", path);
  else if (!json_is_number(seconds))
    rc = rc_error_set(err, "%s: field 'seconds' must be a number", path);
  else if (get_string(obj, "message", &c->message) || get_string(obj, "expected", &c->expected) ||
           get_string(obj, "actual", &c->actual) || get_string(obj, "evidence", &c->evidence) ||
           get_string(obj, "output", &c->output))
    rc = rc_error_set(err, "%s: a text field is not a string", path);
  if (rc == 0) {
    c->seconds = json_number_value(seconds);
    *sut_start_failed = json_is_true(json_object_get(obj, "sut_start_failed"));
  }
  json_decref(obj);
  return rc;
}

void outcome_clear_case(report_case_t *c) {
  char **fields[] = {&c->id,       &c->area,    &c->requirements, &c->requirement,
                     &c->source,   &c->file,    &c->message,      &c->expected,
                     &c->actual,   &c->evidence, &c->output};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    free(*fields[i]);
    *fields[i] = NULL;
  }
  memset(c, 0, sizeof *c);
}

#include "json_report.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "report_io.h"

#ifndef REPLCHECK_VERSION
#define REPLCHECK_VERSION "unknown"
#endif

/* Bump when a field changes meaning or type; adding a field does not (docs/REPORTS.md). */
#define JSON_REPORT_FORMAT 1

/* Every builder returns a new reference, or NULL on allocation failure. json_object_set_new
 * and json_array_append_new take the reference even when they fail (or get NULL), so a
 * failure anywhere only has to be counted, never cleaned up at the call. */

/* A string as valid UTF-8 (jansson refuses anything else), or null when absent. Control
 * characters are kept: JSON escapes them losslessly, and tools want the real bytes. */
static json_t *text_or_null(const char *s) {
  if (s == NULL) return json_null();
  char *clean = report_io_utf8_sanitize(s);
  if (clean == NULL) return NULL;
  json_t *value = json_string(clean);
  free(clean);
  return value;
}

static int set(json_t *object, const char *key, json_t *value) {
  return json_object_set_new(object, key, value) == 0 ? 0 : 1;
}

/* Seconds rounded to milliseconds; the dump precision below prints them without
 * binary noise ("0.123", not "0.12299999999999999"). */
static json_t *seconds_value(double seconds) {
  return json_real(report_io_round_seconds(seconds));
}

/* "HS-01, HS-02" -> ["HS-01", "HS-02"]: split on ',', blanks around ids dropped, empty
 * entries skipped. Absent -> []. */
static json_t *requirement_ids(const char *list) {
  json_t *array = json_array();
  if (array == NULL || list == NULL) return array;
  int failed = 0;
  size_t len;
  for (const char *id; (id = report_io_next_requirement(&list, &len)) != NULL;) {
    char *copy = strndup(id, len);
    failed += copy == NULL || json_array_append_new(array, text_or_null(copy)) != 0;
    free(copy);
  }
  if (failed) {
    json_decref(array);
    return NULL;
  }
  return array;
}

static json_t *case_object(const report_case_t *c) {
  json_t *object = json_object();
  if (object == NULL) return NULL;
  char *area = report_io_case_area(c);
  int failed = area == NULL && !(report_io_is_blank(c->area) && report_io_is_blank(c->id));
  failed += set(object, "id", text_or_null(c->id));
  failed += set(object, "area", text_or_null(area));
  free(area);
  failed += set(object, "requirements", requirement_ids(c->requirements));
  failed += set(object, "requirement", text_or_null(c->requirement));
  failed += set(object, "source", text_or_null(c->source));
  failed += set(object, "file", text_or_null(c->file));
  failed += set(object, "line", c->line > 0 ? json_integer(c->line) : json_null());
  failed += set(object, "verdict", json_string(verdict_name(report_io_verdict(c))));
  failed += set(object, "seconds", seconds_value(c->seconds));
  failed += set(object, "message", text_or_null(c->message));
  failed += set(object, "expected", text_or_null(c->expected));
  failed += set(object, "actual", text_or_null(c->actual));
  failed += set(object, "evidence", text_or_null(c->evidence));
  failed += set(object, "output", text_or_null(c->output));
  if (failed) {
    json_decref(object);
    return NULL;
  }
  return object;
}

static json_t *properties_object(const report_t *report) {
  json_t *object = json_object();
  if (object == NULL) return NULL;
  int failed = 0;
  for (size_t i = 0; i < report->property_count && !failed; i++) {
    const report_property_t *p = &report->properties[i];
    char *key = report_io_utf8_sanitize(p->name != NULL ? p->name : "");
    /* A name given twice keeps its last value, as a later setting overrides. */
    failed += key == NULL || set(object, key, text_or_null(p->value != NULL ? p->value : ""));
    free(key);
  }
  if (failed) {
    json_decref(object);
    return NULL;
  }
  return object;
}

/* All seven verdicts, zeros included, so a tool never has to guess a missing key; out-of-
 * range verdicts count as ERROR, as the cases show them, so the counts add up. */
static json_t *counts_object(const report_t *report) {
  size_t counts[VERDICT_COUNT] = {0};
  for (size_t i = 0; i < report->case_count; i++) counts[report_io_verdict(&report->cases[i])]++;
  json_t *object = json_object();
  if (object == NULL) return NULL;
  int failed = 0;
  for (int v = 0; v < VERDICT_COUNT; v++)
    failed += set(object, verdict_name((verdict_t)v), json_integer((json_int_t)counts[v]));
  if (failed) {
    json_decref(object);
    return NULL;
  }
  return object;
}

static json_t *document(const report_t *report) {
  json_t *doc = json_object();
  json_t *tool = json_object();
  json_t *cases = json_array();
  int failed = doc == NULL || tool == NULL || cases == NULL;
  if (failed) {
    json_decref(doc);
    json_decref(tool);
    json_decref(cases);
    return NULL;
  }
  failed += set(tool, "name", json_string("replcheck"));
  failed += set(tool, "version", json_string(REPLCHECK_VERSION));
  for (size_t i = 0; i < report->case_count && !failed; i++)
    failed += json_array_append_new(cases, case_object(&report->cases[i])) != 0;
  failed += set(doc, "format", json_integer(JSON_REPORT_FORMAT));
  failed += set(doc, "tool", tool);
  failed += set(doc, "name", text_or_null(report->name));
  failed += set(doc, "timestamp", text_or_null(report->timestamp));
  failed += set(doc, "hostname", text_or_null(report->hostname));
  failed += set(doc, "seconds", seconds_value(report->seconds));
  failed += set(doc, "strict", json_boolean(report->strict));
  failed += set(doc, "properties", properties_object(report));
  failed += set(doc, "counts", counts_object(report));
  failed += set(doc, "cases", cases);
  if (failed) {
    json_decref(doc);
    return NULL;
  }
  return doc;
}

int json_report_write_stream(const report_t *report, FILE *out) {
  if (report == NULL || out == NULL) {
    errno = EINVAL;
    return -1;
  }
  json_t *doc = document(report);
  /* 15 significant digits print any millisecond value below 10^12 s exactly; jansson
   * writes the decimal point as '.' whatever LC_NUMERIC says. */
  char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) : NULL;
  json_decref(doc);
  if (text == NULL) {
    errno = ENOMEM;
    return -1;
  }
  report_io_writer_t w;
  report_io_writer_init(&w, out);
  report_io_put(&w, text);
  report_io_put(&w, "\n");
  free(text);
  return report_io_writer_finish(&w);
}

int json_report_write_file(const report_t *report, const char *path, rc_error_t *err) {
  return report_io_write_file(report, path, "json report", json_report_write_stream, err);
}

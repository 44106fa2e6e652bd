#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rc_clock.h"

static const char *const verdict_names[VERDICT_COUNT] = {
    [VERDICT_PASS] = "PASS",   [VERDICT_FAIL] = "FAIL",   [VERDICT_NON_STRICT] = "NON_STRICT",
    [VERDICT_SKIP] = "SKIP",   [VERDICT_XFAIL] = "XFAIL", [VERDICT_XPASS] = "XPASS",
    [VERDICT_ERROR] = "ERROR",
};

const char *verdict_name(verdict_t v) {
  /* Reports are built from data that crossed a process boundary (the forked test's
   * result file), so an out-of-range value must print as something, not crash. */
  if ((unsigned)v >= VERDICT_COUNT) return "UNKNOWN";
  return verdict_names[v];
}

int verdict_from_name(const char *name, verdict_t *out) {
  if (name == NULL) return -1;
  for (int v = 0; v < VERDICT_COUNT; v++) {
    if (strcmp(name, verdict_names[v]) == 0) {
      if (out != NULL) *out = (verdict_t)v;
      return 0;
    }
  }
  return -1;
}

static char *copy_string(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

static int fill_timestamp(report_t *report) {
  time_t now = (time_t)(rc_clock_wall_ms() / 1000);
  struct tm tm;
  char buf[32];
  if (gmtime_r(&now, &tm) == NULL) return -1;
  if (strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0) return -1;
  return report_set(&report->timestamp, buf);
}

static int fill_hostname(report_t *report) {
  char buf[256];
  /* gethostname() may truncate without terminating; the Ant schema asks for
   * "localhost" when the name cannot be determined. */
  if (gethostname(buf, sizeof buf - 1) != 0) buf[0] = '\0';
  buf[sizeof buf - 1] = '\0';
  return report_set(&report->hostname, buf[0] != '\0' ? buf : "localhost");
}

report_t *report_create(const char *name) {
  report_t *report = calloc(1, sizeof *report);
  if (report == NULL) return NULL;
  if (report_set(&report->name, name != NULL ? name : "replcheck") != 0 ||
      fill_timestamp(report) != 0 || fill_hostname(report) != 0) {
    report_destroy(report);
    return NULL;
  }
  return report;
}

static void case_free_strings(report_case_t *c) {
  free(c->id);
  free(c->area);
  free(c->requirements);
  free(c->requirement);
  free(c->source);
  free(c->file);
  free(c->message);
  free(c->expected);
  free(c->actual);
  free(c->evidence);
  free(c->output);
}

void report_destroy(report_t *report) {
  if (report == NULL) return;
  for (size_t i = 0; i < report->property_count; i++) {
    free(report->properties[i].name);
    free(report->properties[i].value);
  }
  free(report->properties);
  for (size_t i = 0; i < report->case_count; i++) case_free_strings(&report->cases[i]);
  free(report->cases);
  free(report->name);
  free(report->timestamp);
  free(report->hostname);
  free(report);
}

int report_add_property(report_t *report, const char *name, const char *value) {
  if (report == NULL || name == NULL) return -1;
  char *name_copy = copy_string(name);
  char *value_copy = copy_string(value != NULL ? value : "");
  report_property_t *grown = NULL;
  if (name_copy != NULL && value_copy != NULL)
    grown = realloc(report->properties, (report->property_count + 1) * sizeof *grown);
  if (grown == NULL) {
    free(name_copy);
    free(value_copy);
    return -1;
  }
  report->properties = grown;
  grown[report->property_count].name = name_copy;
  grown[report->property_count].value = value_copy;
  report->property_count++;
  return 0;
}

report_case_t *report_add_case(report_t *report) {
  if (report == NULL) return NULL;
  if (report->case_count == report->case_capacity) {
    size_t capacity = report->case_capacity != 0 ? report->case_capacity * 2 : 16;
    if (capacity > ((size_t)-1) / sizeof(report_case_t)) return NULL;
    report_case_t *grown = realloc(report->cases, capacity * sizeof *grown);
    if (grown == NULL) return NULL;
    report->cases = grown;
    report->case_capacity = capacity;
  }
  report_case_t *c = &report->cases[report->case_count++];
  memset(c, 0, sizeof *c);
  c->verdict = VERDICT_PASS;
  return c;
}

int report_set(char **field, const char *value) {
  if (field == NULL) return -1;
  char *copy = NULL;
  if (value != NULL) {
    copy = copy_string(value);
    if (copy == NULL) return -1;
  }
  free(*field);
  *field = copy;
  return 0;
}

size_t report_count(const report_t *report, verdict_t verdict) {
  if (report == NULL) return 0;
  size_t n = 0;
  for (size_t i = 0; i < report->case_count; i++)
    if (report->cases[i].verdict == verdict) n++;
  return n;
}

#include "junit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rc_clock.h"
#include "report_io.h"

#ifndef REPLCHECK_VERSION
#define REPLCHECK_VERSION "unknown"
#endif

/* The JUnit element a case becomes. Counting and writing both go through
 * case_element(), so the testsuite's counts always match its children. */
typedef enum junit_element {
  ELEMENT_NONE,
  ELEMENT_FAILURE,
  ELEMENT_ERROR,
  ELEMENT_SKIPPED,
} junit_element_t;

static junit_element_t case_element(const report_case_t *c, int strict) {
  switch (c->verdict) {
  case VERDICT_PASS:
    return ELEMENT_NONE;
  case VERDICT_FAIL:
    return ELEMENT_FAILURE;
  case VERDICT_NON_STRICT:
  case VERDICT_XPASS:
    return strict ? ELEMENT_FAILURE : ELEMENT_NONE;
  case VERDICT_SKIP:
  case VERDICT_XFAIL:
    return ELEMENT_SKIPPED;
  case VERDICT_ERROR:
  default:
    /* An out-of-range verdict is a harness bug: show it as an error, never as a pass. */
    return ELEMENT_ERROR;
  }
}

/* Where escaped text goes: element content, an attribute value, or one line of
 * element content (a list entry that must not break into several lines). */
typedef enum escape_mode {
  ESCAPE_TEXT,
  ESCAPE_ATTRIBUTE,
  ESCAPE_LINE,
} escape_mode_t;

/* Writes text as XML 1.0 character data or attribute value, per mode. Markup
 * characters become entities; CR becomes &#13; (so CRLF survives end-of-line
 * normalisation); TAB and LF become references in attributes (which would otherwise
 * be normalised to spaces) and LF/CR a visible "\n"/"\r" in ESCAPE_LINE; C0
 * controls and DEL become a visible "\xNN", C1 controls "\u00NN"; whatever XML
 * cannot carry (ill-formed UTF-8, U+FFFE, U+FFFF) becomes U+FFFD. Runs of plain bytes
 * go out in one write. */
static void put_escaped(report_io_writer_t *w, const char *text, escape_mode_t mode) {
  if (text == NULL) return;
  const unsigned char *s = (const unsigned char *)text;
  size_t n = strlen(text), run = 0, i = 0;
  while (i < n) {
    long cp;
    size_t len = report_io_utf8_decode(s + i, n - i, &cp);
    const char *replacement = NULL;
    char visible[16];
    if (cp == '&') {
      replacement = "&amp;";
    } else if (cp == '<') {
      replacement = "&lt;";
    } else if (cp == '>') {
      replacement = "&gt;";
    } else if (cp == '"') {
      replacement = "&quot;";
    } else if (cp == '\'') {
      replacement = "&apos;";
    } else if (cp == '\r') {
      replacement = mode == ESCAPE_LINE ? "\\r" : "&#13;";
    } else if (cp == '\n') {
      if (mode != ESCAPE_TEXT) replacement = mode == ESCAPE_LINE ? "\\n" : "&#10;";
    } else if (cp == '\t') {
      if (mode == ESCAPE_ATTRIBUTE) replacement = "&#9;";
    } else if ((cp >= 0 && cp < 0x20) || cp == 0x7F) {
      snprintf(visible, sizeof visible, "\\x%02lx", cp);
      replacement = visible;
    } else if (cp >= 0x80 && cp <= 0x9F) {
      snprintf(visible, sizeof visible, "\\u%04lx", cp);
      replacement = visible;
    } else if (cp < 0 || cp == 0xFFFE || cp == 0xFFFF) {
      replacement = "\xEF\xBF\xBD";
    }
    if (replacement != NULL) {
      report_io_put_bytes(w, text + i - run, run);
      run = 0;
      report_io_put(w, replacement);
    } else {
      run += len;
    }
    i += len;
  }
  report_io_put_bytes(w, text + n - run, run);
}

static void put_attribute(report_io_writer_t *w, const char *name, const char *value) {
  report_io_put(w, " ");
  report_io_put(w, name);
  report_io_put(w, "=\"");
  put_escaped(w, value, ESCAPE_ATTRIBUTE);
  report_io_put(w, "\"");
}

/* Attributes the Ant schema types as non-empty tokens need a non-blank value. */
static const char *non_blank(const char *value, const char *fallback) {
  return report_io_is_blank(value) ? fallback : value;
}

/* The Ant schema wants exactly YYYY-MM-DDTHH:MM:SS and an actual date (it derives
 * from xs:dateTime), so a report timestamp that is not one is replaced by now. */
static int timestamp_is_valid(const char *ts) {
  static const char shape[] = "dddd-dd-ddTdd:dd:dd";
  if (ts == NULL || strlen(ts) != sizeof shape - 1) return 0;
  for (size_t i = 0; i < sizeof shape - 1; i++) {
    if (shape[i] == 'd' ? (ts[i] < '0' || ts[i] > '9') : ts[i] != shape[i]) return 0;
  }
  struct tm tm = {0};
  tm.tm_year = atoi(ts) - 1900;
  tm.tm_mon = atoi(ts + 5) - 1;
  tm.tm_mday = atoi(ts + 8);
  tm.tm_hour = atoi(ts + 11);
  tm.tm_min = atoi(ts + 14);
  tm.tm_sec = atoi(ts + 17);
  struct tm check = tm;
  time_t t = timegm(&check);
  /* timegm normalises out-of-range fields; a real date survives unchanged. */
  return atoi(ts) >= 1 && check.tm_year == tm.tm_year && check.tm_mon == tm.tm_mon &&
         check.tm_mday == tm.tm_mday && check.tm_hour == tm.tm_hour &&
         check.tm_min == tm.tm_min && check.tm_sec == tm.tm_sec && t != (time_t)-1;
}

static void put_timestamp(report_io_writer_t *w, const char *ts) {
  if (timestamp_is_valid(ts)) {
    put_attribute(w, "timestamp", ts);
    return;
  }
  char buf[32] = "1970-01-01T00:00:00";
  time_t now = (time_t)(rc_clock_wall_ms() / 1000);
  struct tm tm;
  if (gmtime_r(&now, &tm) != NULL) strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  put_attribute(w, "timestamp", buf);
}

static void put_property(report_io_writer_t *w, const char *name, const char *value) {
  report_io_put(w, "      <property");
  put_attribute(w, "name", non_blank(name, "unnamed"));
  put_attribute(w, "value", value != NULL ? value : "");
  report_io_put(w, "/>\n");
}

static void put_properties(report_io_writer_t *w, const report_t *report) {
  /* Jenkins' schema requires at least one property, and the verdict counts are the
   * only place the JUnit model keeps NON_STRICT, XFAIL and XPASS apart. */
  report_io_put(w, "    <properties>\n");
  put_property(w, "replcheck.version", REPLCHECK_VERSION);
  for (size_t i = 0; i < report->property_count; i++)
    put_property(w, report->properties[i].name, report->properties[i].value);
  put_property(w, "replcheck.strict", report->strict ? "true" : "false");
  for (int v = 0; v < VERDICT_COUNT; v++) {
    char name[64], count[32];
    snprintf(name, sizeof name, "replcheck.verdict.%s", verdict_name((verdict_t)v));
    snprintf(count, sizeof count, "%zu", report_count(report, (verdict_t)v));
    put_property(w, name, count);
  }
  report_io_put(w, "    </properties>\n");
}

/* Puts text and ends it with a newline if it does not already end with one. */
static void put_escaped_line(report_io_writer_t *w, const char *text) {
  put_escaped(w, text, ESCAPE_TEXT);
  size_t n = strlen(text);
  if (n == 0 || text[n - 1] != '\n') report_io_put(w, "\n");
}

/* The failure block: Requirement / Source / Location / Expected / Actual / Evidence,
 * each line only when the report holds it. */
static void put_details(report_io_writer_t *w, const report_case_t *c) {
  if (c->requirement != NULL || c->requirements != NULL) {
    report_io_put(w, "Requirement");
    if (c->requirements != NULL) {
      report_io_put(w, " (");
      put_escaped(w, c->requirements, ESCAPE_LINE);
      report_io_put(w, ")");
    }
    report_io_put(w, ":");
    if (c->requirement != NULL) {
      report_io_put(w, " ");
      put_escaped(w, c->requirement, ESCAPE_LINE);
    }
    report_io_put(w, "\n");
  }
  if (c->source != NULL) {
    report_io_put(w, "Source: ");
    put_escaped_line(w, c->source);
  }
  if (c->file != NULL) {
    report_io_put(w, "Location: ");
    put_escaped(w, c->file, ESCAPE_LINE);
    if (c->line > 0) {
      report_io_put(w, ":");
      report_io_put_size(w, (size_t)c->line);
    }
    report_io_put(w, "\n");
  }
  if (c->expected != NULL) {
    report_io_put(w, "Expected: ");
    put_escaped_line(w, c->expected);
  }
  if (c->actual != NULL) {
    report_io_put(w, "Actual: ");
    put_escaped_line(w, c->actual);
  }
  if (c->evidence != NULL) {
    report_io_put(w, "Evidence:\n");
    put_escaped_line(w, c->evidence);
  }
}

static const char *failure_message(const report_case_t *c) {
  if (c->message != NULL) return c->message;
  switch (c->verdict) {
  case VERDICT_NON_STRICT:
    return "a SHOULD requirement was not met (--strict)";
  case VERDICT_XPASS:
    return "listed as expected to fail, but passed (--strict)";
  case VERDICT_ERROR:
    return "harness or set-up error";
  case VERDICT_FAIL:
    return c->requirement != NULL ? c->requirement : "requirement not met";
  default:
    return "invalid verdict";
  }
}

static void put_case_label(report_io_writer_t *w, const report_case_t *c, size_t index) {
  char buf[48];
  put_escaped(w, report_io_case_name(c, index, buf, sizeof buf), ESCAPE_LINE);
}

/* classname = "replcheck.<area>"; without an area, the id's first segment. */
static void put_classname(report_io_writer_t *w, const report_case_t *c) {
  char *area = report_io_case_area(c);
  report_io_put(w, " classname=\"replcheck.");
  put_escaped(w, area != NULL ? area : "unknown", ESCAPE_ATTRIBUTE);
  report_io_put(w, "\"");
  free(area);
}

static void put_testcase(report_io_writer_t *w, const report_case_t *c, size_t index, int strict) {
  char name[48];
  report_io_put(w, "    <testcase");
  put_attribute(w, "name", report_io_case_name(c, index, name, sizeof name));
  put_classname(w, c);
  report_io_put(w, " time=\"");
  report_io_put_seconds(w, c->seconds);
  report_io_put(w, "\"");
  junit_element_t element = case_element(c, strict);
  if (element == ELEMENT_NONE) {
    report_io_put(w, "/>\n");
    return;
  }
  report_io_put(w, ">\n");
  if (element == ELEMENT_SKIPPED) {
    /* Jenkins' schema types <skipped> as a plain string: no message attribute. */
    report_io_put(w, "      <skipped>");
    if (c->verdict == VERDICT_XFAIL) {
      report_io_put(w, "XFAIL (expected failure, does not fail the run): ");
      put_escaped_line(w, c->message != NULL ? c->message : "failed as expected");
      put_details(w, c);
    } else {
      put_escaped(w, c->message != NULL ? c->message : "skipped", ESCAPE_TEXT);
    }
    report_io_put(w, "</skipped>\n");
  } else {
    const char *tag = element == ELEMENT_ERROR ? "error" : "failure";
    report_io_put(w, "      <");
    report_io_put(w, tag);
    put_attribute(w, "type", verdict_name(c->verdict));
    put_attribute(w, "message", failure_message(c));
    report_io_put(w, ">");
    put_details(w, c);
    report_io_put(w, "</");
    report_io_put(w, tag);
    report_io_put(w, ">\n");
  }
  report_io_put(w, "    </testcase>\n");
}

/* The suite's system-out: the Ant schema gives a testcase no system-out and no
 * attribute for the verdict, so the per-test verdicts, the notes for verdicts JUnit
 * cannot express and the SUT's output excerpts are collected here. */
static void put_system_out(report_io_writer_t *w, const report_t *report) {
  report_io_put(w, "    <system-out>");
  report_io_put(w, "replcheck: ");
  report_io_put_size(w, report->case_count);
  report_io_put(w, " tests");
  for (int v = 0; v < VERDICT_COUNT; v++) {
    report_io_put(w, v == 0 ? " (" : ", ");
    report_io_put(w, verdict_name((verdict_t)v));
    report_io_put(w, " ");
    report_io_put_size(w, report_count(report, (verdict_t)v));
  }
  report_io_put(w, report->strict ? "), --strict\n" : ")\n");
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    report_io_put(w, verdict_name(c->verdict));
    report_io_put(w, " ");
    put_case_label(w, c, i);
    if (c->requirements != NULL) {
      report_io_put(w, " [");
      put_escaped(w, c->requirements, ESCAPE_LINE);
      report_io_put(w, "]");
    }
    report_io_put(w, " (");
    report_io_put_seconds(w, c->seconds);
    report_io_put(w, " s)");
    if (c->message != NULL) {
      report_io_put(w, ": ");
      put_escaped(w, c->message, ESCAPE_LINE);
    }
    report_io_put(w, "\n");
  }
  for (size_t i = 0; i < report->case_count && !report->strict; i++) {
    const report_case_t *c = &report->cases[i];
    if (c->verdict == VERDICT_NON_STRICT) {
      report_io_put(w, "\nNON_STRICT ");
      put_case_label(w, c, i);
      report_io_put(w, ": a SHOULD requirement was not met; counted as passed because the run "
             "is not --strict\n");
      put_details(w, c);
    } else if (c->verdict == VERDICT_XPASS) {
      report_io_put(w, "\nXPASS ");
      put_case_label(w, c, i);
      report_io_put(w, ": WARNING: listed as expected to fail, but passed; remove it from the "
             "expected failures\n");
    }
  }
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    if (c->output == NULL) continue;
    report_io_put(w, "\n--- output of ");
    put_case_label(w, c, i);
    report_io_put(w, " ---\n");
    put_escaped_line(w, c->output);
  }
  report_io_put(w, "</system-out>\n");
}

int junit_write_stream(const report_t *report, FILE *out) {
  if (report == NULL || out == NULL) {
    errno = EINVAL;
    return -1;
  }
  report_io_writer_t w;
  report_io_writer_init(&w, out);
  size_t failures = 0, errors = 0, skipped = 0;
  for (size_t i = 0; i < report->case_count; i++) {
    junit_element_t element = case_element(&report->cases[i], report->strict);
    failures += element == ELEMENT_FAILURE;
    errors += element == ELEMENT_ERROR;
    skipped += element == ELEMENT_SKIPPED;
  }
  const char *name = non_blank(report->name, "replcheck");

  report_io_put(&w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite");
  put_attribute(&w, "name", name);
  put_attribute(&w, "package", name);
  report_io_put(&w, " id=\"0\"");
  put_timestamp(&w, report->timestamp);
  put_attribute(&w, "hostname", non_blank(report->hostname, "localhost"));
  report_io_put(&w, " tests=\"");
  report_io_put_size(&w, report->case_count);
  report_io_put(&w, "\" failures=\"");
  report_io_put_size(&w, failures);
  report_io_put(&w, "\" errors=\"");
  report_io_put_size(&w, errors);
  report_io_put(&w, "\" skipped=\"");
  report_io_put_size(&w, skipped);
  report_io_put(&w, "\" time=\"");
  report_io_put_seconds(&w, report->seconds);
  report_io_put(&w, "\">\n");
  put_properties(&w, report);
  for (size_t i = 0; i < report->case_count; i++)
    put_testcase(&w, &report->cases[i], i, report->strict);
  put_system_out(&w, report);
  report_io_put(&w, "    <system-err></system-err>\n  </testsuite>\n</testsuites>\n");

  return report_io_writer_finish(&w);
}

int junit_write_file(const report_t *report, const char *path, rc_error_t *err) {
  return report_io_write_file(report, path, "junit", junit_write_stream, err);
}

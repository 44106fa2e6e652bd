#include "junit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rc_clock.h"

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

/* Output state: the first write error sticks, and its errno is kept for the caller. */
typedef struct writer {
  FILE *out;
  int failed;
  int saved_errno;
} writer_t;

static void put_bytes(writer_t *w, const char *s, size_t n) {
  if (w->failed || n == 0) return;
  errno = 0;
  if (fwrite(s, 1, n, w->out) != n) {
    w->failed = 1;
    w->saved_errno = errno != 0 ? errno : EIO;
  }
}

static void put(writer_t *w, const char *s) { put_bytes(w, s, strlen(s)); }

/* Integers only: printf's integer conversions ignore LC_NUMERIC (no grouping without
 * the ' flag), unlike %f. */
static void put_size(writer_t *w, size_t n) {
  char buf[32];
  snprintf(buf, sizeof buf, "%zu", n);
  put(w, buf);
}

/* Seconds with '.' and three decimals, through integer milliseconds so the locale's
 * decimal separator never appears. NaN and negative become 0; absurd values are
 * clamped so the conversion stays defined. */
static void format_seconds(double seconds, char *buf, size_t size) {
  long long ms = 0;
  if (seconds > 0) {
    if (seconds > 1e12) seconds = 1e12;
    ms = (long long)(seconds * 1000.0 + 0.5);
  }
  snprintf(buf, size, "%lld.%03lld", ms / 1000, ms % 1000);
}

static void put_seconds(writer_t *w, double seconds) {
  char buf[48];
  format_seconds(seconds, buf, sizeof buf);
  put(w, buf);
}

/* Decodes one UTF-8 character from s (n > 0 bytes available). Returns the number of
 * bytes consumed and stores the code point, or -1 for an ill-formed sequence; then
 * the length is its maximal subpart (Unicode ch. 3, "U+FFFD substitution of maximal
 * subparts"), so overlong forms, surrogates, lone continuation bytes and truncated
 * sequences each turn into one U+FFFD per maximal subpart. */
static size_t utf8_decode(const unsigned char *s, size_t n, long *cp) {
  unsigned char b = s[0];
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t need;
  long value;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
    value = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    value = b & 0x0F;
    if (b == 0xE0) lo = 0xA0; /* overlong */
    if (b == 0xED) hi = 0x9F; /* surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    value = b & 0x07;
    if (b == 0xF0) lo = 0x90; /* overlong */
    if (b == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    *cp = -1;
    return 1;
  }
  for (size_t i = 1; i <= need; i++) {
    if (i >= n || s[i] < lo || s[i] > hi) {
      *cp = -1;
      return i;
    }
    value = (value << 6) | (s[i] & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  *cp = value;
  return need + 1;
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
static void put_escaped(writer_t *w, const char *text, escape_mode_t mode) {
  if (text == NULL) return;
  const unsigned char *s = (const unsigned char *)text;
  size_t n = strlen(text), run = 0, i = 0;
  while (i < n) {
    long cp;
    size_t len = utf8_decode(s + i, n - i, &cp);
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
      put_bytes(w, text + i - run, run);
      run = 0;
      put(w, replacement);
    } else {
      run += len;
    }
    i += len;
  }
  put_bytes(w, text + n - run, run);
}

static int is_blank(const char *s) {
  if (s == NULL) return 1;
  for (; *s != '\0'; s++)
    if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
  return 1;
}

static void put_attribute(writer_t *w, const char *name, const char *value) {
  put(w, " ");
  put(w, name);
  put(w, "=\"");
  put_escaped(w, value, ESCAPE_ATTRIBUTE);
  put(w, "\"");
}

/* Attributes the Ant schema types as non-empty tokens need a non-blank value. */
static const char *non_blank(const char *value, const char *fallback) {
  return is_blank(value) ? fallback : value;
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

static void put_timestamp(writer_t *w, const char *ts) {
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

static void put_property(writer_t *w, const char *name, const char *value) {
  put(w, "      <property");
  put_attribute(w, "name", non_blank(name, "unnamed"));
  put_attribute(w, "value", value != NULL ? value : "");
  put(w, "/>\n");
}

static void put_properties(writer_t *w, const report_t *report) {
  /* Jenkins' schema requires at least one property, and the verdict counts are the
   * only place the JUnit model keeps NON_STRICT, XFAIL and XPASS apart. */
  put(w, "    <properties>\n");
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
  put(w, "    </properties>\n");
}

/* Puts text and ends it with a newline if it does not already end with one. */
static void put_escaped_line(writer_t *w, const char *text) {
  put_escaped(w, text, ESCAPE_TEXT);
  size_t n = strlen(text);
  if (n == 0 || text[n - 1] != '\n') put(w, "\n");
}

/* The failure block: Requirement / Source / Location / Expected / Actual / Evidence,
 * each line only when the report holds it. */
static void put_details(writer_t *w, const report_case_t *c) {
  if (c->requirement != NULL || c->requirements != NULL) {
    put(w, "Requirement");
    if (c->requirements != NULL) {
      put(w, " (");
      put_escaped(w, c->requirements, ESCAPE_LINE);
      put(w, ")");
    }
    put(w, ":");
    if (c->requirement != NULL) {
      put(w, " ");
      put_escaped(w, c->requirement, ESCAPE_LINE);
    }
    put(w, "\n");
  }
  if (c->source != NULL) {
    put(w, "Source: ");
    put_escaped_line(w, c->source);
  }
  if (c->file != NULL) {
    put(w, "Location: ");
    put_escaped(w, c->file, ESCAPE_LINE);
    if (c->line > 0) {
      put(w, ":");
      put_size(w, (size_t)c->line);
    }
    put(w, "\n");
  }
  if (c->expected != NULL) {
    put(w, "Expected: ");
    put_escaped_line(w, c->expected);
  }
  if (c->actual != NULL) {
    put(w, "Actual: ");
    put_escaped_line(w, c->actual);
  }
  if (c->evidence != NULL) {
    put(w, "Evidence:\n");
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

/* The case's id, or "unnamed-<n>" (1-based) for a blank one, the same in the
 * testcase name and in the system-out lines. */
static const char *case_name(const report_case_t *c, size_t index, char *buf, size_t size) {
  if (!is_blank(c->id)) return c->id;
  snprintf(buf, size, "unnamed-%zu", index + 1);
  return buf;
}

static void put_case_label(writer_t *w, const report_case_t *c, size_t index) {
  char buf[48];
  put_escaped(w, case_name(c, index, buf, sizeof buf), ESCAPE_LINE);
}

/* classname = "replcheck.<area>"; without an area, the id's first segment. */
static void put_classname(writer_t *w, const report_case_t *c) {
  put(w, " classname=\"replcheck.");
  if (!is_blank(c->area)) {
    put_escaped(w, c->area, ESCAPE_ATTRIBUTE);
  } else if (!is_blank(c->id)) {
    const char *slash = strchr(c->id, '/');
    size_t n = slash != NULL ? (size_t)(slash - c->id) : strlen(c->id);
    char *segment = strndup(c->id, n);
    put_escaped(w, segment != NULL ? segment : "unknown", ESCAPE_ATTRIBUTE);
    free(segment);
  } else {
    put(w, "unknown");
  }
  put(w, "\"");
}

static void put_testcase(writer_t *w, const report_case_t *c, size_t index, int strict) {
  char name[48];
  put(w, "    <testcase");
  put_attribute(w, "name", case_name(c, index, name, sizeof name));
  put_classname(w, c);
  put(w, " time=\"");
  put_seconds(w, c->seconds);
  put(w, "\"");
  junit_element_t element = case_element(c, strict);
  if (element == ELEMENT_NONE) {
    put(w, "/>\n");
    return;
  }
  put(w, ">\n");
  if (element == ELEMENT_SKIPPED) {
    /* Jenkins' schema types <skipped> as a plain string: no message attribute. */
    put(w, "      <skipped>");
    if (c->verdict == VERDICT_XFAIL) {
      put(w, "XFAIL (expected failure, does not fail the run): ");
      put_escaped_line(w, c->message != NULL ? c->message : "failed as expected");
      put_details(w, c);
    } else {
      put_escaped(w, c->message != NULL ? c->message : "skipped", ESCAPE_TEXT);
    }
    put(w, "</skipped>\n");
  } else {
    const char *tag = element == ELEMENT_ERROR ? "error" : "failure";
    put(w, "      <");
    put(w, tag);
    put_attribute(w, "type", verdict_name(c->verdict));
    put_attribute(w, "message", failure_message(c));
    put(w, ">");
    put_details(w, c);
    put(w, "</");
    put(w, tag);
    put(w, ">\n");
  }
  put(w, "    </testcase>\n");
}

/* The suite's system-out: the Ant schema gives a testcase no system-out and no
 * attribute for the verdict, so the per-test verdicts, the notes for verdicts JUnit
 * cannot express and the SUT's output excerpts are collected here. */
static void put_system_out(writer_t *w, const report_t *report) {
  put(w, "    <system-out>");
  put(w, "replcheck: ");
  put_size(w, report->case_count);
  put(w, " tests");
  for (int v = 0; v < VERDICT_COUNT; v++) {
    put(w, v == 0 ? " (" : ", ");
    put(w, verdict_name((verdict_t)v));
    put(w, " ");
    put_size(w, report_count(report, (verdict_t)v));
  }
  put(w, report->strict ? "), --strict\n" : ")\n");
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    put(w, verdict_name(c->verdict));
    put(w, " ");
    put_case_label(w, c, i);
    if (c->requirements != NULL) {
      put(w, " [");
      put_escaped(w, c->requirements, ESCAPE_LINE);
      put(w, "]");
    }
    put(w, " (");
    put_seconds(w, c->seconds);
    put(w, " s)");
    if (c->message != NULL) {
      put(w, ": ");
      put_escaped(w, c->message, ESCAPE_LINE);
    }
    put(w, "\n");
  }
  for (size_t i = 0; i < report->case_count && !report->strict; i++) {
    const report_case_t *c = &report->cases[i];
    if (c->verdict == VERDICT_NON_STRICT) {
      put(w, "\nNON_STRICT ");
      put_case_label(w, c, i);
      put(w, ": a SHOULD requirement was not met; counted as passed because the run "
             "is not --strict\n");
      put_details(w, c);
    } else if (c->verdict == VERDICT_XPASS) {
      put(w, "\nXPASS ");
      put_case_label(w, c, i);
      put(w, ": WARNING: listed as expected to fail, but passed; remove it from the "
             "expected failures\n");
    }
  }
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    if (c->output == NULL) continue;
    put(w, "\n--- output of ");
    put_case_label(w, c, i);
    put(w, " ---\n");
    put_escaped_line(w, c->output);
  }
  put(w, "</system-out>\n");
}

int junit_write_stream(const report_t *report, FILE *out) {
  if (report == NULL || out == NULL) {
    errno = EINVAL;
    return -1;
  }
  writer_t w = {.out = out, .failed = 0, .saved_errno = 0};
  size_t failures = 0, errors = 0, skipped = 0;
  for (size_t i = 0; i < report->case_count; i++) {
    junit_element_t element = case_element(&report->cases[i], report->strict);
    failures += element == ELEMENT_FAILURE;
    errors += element == ELEMENT_ERROR;
    skipped += element == ELEMENT_SKIPPED;
  }
  const char *name = non_blank(report->name, "replcheck");

  put(&w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite");
  put_attribute(&w, "name", name);
  put_attribute(&w, "package", name);
  put(&w, " id=\"0\"");
  put_timestamp(&w, report->timestamp);
  put_attribute(&w, "hostname", non_blank(report->hostname, "localhost"));
  put(&w, " tests=\"");
  put_size(&w, report->case_count);
  put(&w, "\" failures=\"");
  put_size(&w, failures);
  put(&w, "\" errors=\"");
  put_size(&w, errors);
  put(&w, "\" skipped=\"");
  put_size(&w, skipped);
  put(&w, "\" time=\"");
  put_seconds(&w, report->seconds);
  put(&w, "\">\n");
  put_properties(&w, report);
  for (size_t i = 0; i < report->case_count; i++)
    put_testcase(&w, &report->cases[i], i, report->strict);
  put_system_out(&w, report);
  put(&w, "    <system-err></system-err>\n  </testsuite>\n</testsuites>\n");

  if (!w.failed && fflush(out) != 0) {
    w.failed = 1;
    w.saved_errno = errno != 0 ? errno : EIO;
  }
  if (!w.failed && ferror(out)) {
    w.failed = 1;
    w.saved_errno = EIO;
  }
  if (w.failed) {
    errno = w.saved_errno;
    return -1;
  }
  return 0;
}

/* Makes the rename itself durable; a failure here cannot undo a complete report, so
 * it is not reported. */
static void sync_parent_directory(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t dir_len = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
  char *dir = slash == NULL ? strdup(".") : strndup(path, dir_len);
  if (dir == NULL) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

int junit_write_file(const report_t *report, const char *path, rc_error_t *err) {
  if (path == NULL || path[0] == '\0') return rc_error_set(err, "junit: no output path given");
  if (report == NULL) return rc_error_set(err, "%s: no report to write", path);
  size_t tmp_size = strlen(path) + 32;
  char *tmp = malloc(tmp_size);
  if (tmp == NULL) return rc_error_set(err, "%s: %s", path, strerror(ENOMEM));
  snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());

  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return rc_error_set(err, "%s: %s", path, strerror(e));
  }
  FILE *out = fdopen(fd, "w");
  if (out == NULL) {
    int e = errno;
    close(fd);
    unlink(tmp);
    free(tmp);
    return rc_error_set(err, "%s: %s", path, strerror(e));
  }
  int e = 0;
  if (junit_write_stream(report, out) != 0) e = errno != 0 ? errno : EIO;
  if (e == 0 && fsync(fd) != 0) e = errno;
  if (fclose(out) != 0 && e == 0) e = errno;
  if (e == 0 && rename(tmp, path) != 0) e = errno;
  if (e != 0) {
    unlink(tmp);
    free(tmp);
    return rc_error_set(err, "%s: %s", path, strerror(e));
  }
  free(tmp);
  sync_parent_directory(path);
  return 0;
}

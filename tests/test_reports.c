/* Unit tests of the HTML and JSON report writers (harness/html_report.c,
 * harness/json_report.c) and the helpers they share with the JUnit writer
 * (harness/report_io.c). The JSON is read back with jansson and compared with the model
 * field by field; the HTML is rendered by headless Chromium (Debian's `chromium`,
 * installed by ci/install-deps.sh) and the DOM it builds is checked for what a person
 * must see. Set REPLCHECK_TEST_KEEP_DIR to a directory to keep the rendered report and
 * its screenshot there for a look. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "html_report.h"
#include "json_report.h"
#include "report.h"
#include "report_io.h"
#include "test_support.h"

static char *temp_dir;

/* Strings the helpers below return are owned here and freed by teardown(), so a test
 * reads as its checks rather than its bookkeeping. */
static void *owned[256];
static size_t owned_count;

static void *own(void *p) {
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_lt(owned_count, sizeof owned / sizeof owned[0]);
  owned[owned_count++] = p;
  return p;
}

static void setup(void) {
  temp_dir = test_make_temp_dir("test_reports");
  ck_assert_ptr_nonnull(temp_dir);
}

static void teardown(void) {
  setlocale(LC_ALL, "C");
  while (owned_count > 0) free(owned[--owned_count]);
  test_remove_tree(temp_dir);
  free(temp_dir);
  temp_dir = NULL;
}

/* ---- helpers -------------------------------------------------------------- */

typedef int (*write_file_fn)(const report_t *, const char *, rc_error_t *);
typedef int (*write_stream_fn)(const report_t *, FILE *);

static char *temp_path(const char *name) {
  return own(test_path(temp_dir, name));
}

static char *read_all(const char *path) {
  char *data = test_read_file(path, NULL);
  ck_assert_msg(data != NULL, "cannot read %s", path);
  return own(data);
}

static char *write_to_memory(const report_t *report, write_stream_fn write_stream) {
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(out);
  ck_assert_int_eq(write_stream(report, out), 0);
  ck_assert_int_eq(fclose(out), 0);
  return own(buf);
}

static char *write_report(const report_t *report, write_file_fn write_file, const char *name) {
  char *path = temp_path(name);
  rc_error_t err = {{0}};
  ck_assert_msg(write_file(report, path, &err) == 0, "writing %s: %s", name, err.msg);
  return path;
}

static report_case_t *add_case(report_t *report, const char *id, const char *area,
                               verdict_t verdict, double seconds, const char *message) {
  report_case_t *c = report_add_case(report);
  ck_assert_ptr_nonnull(c);
  ck_assert_int_eq(report_set(&c->id, id), 0);
  ck_assert_int_eq(report_set(&c->area, area), 0);
  ck_assert_int_eq(report_set(&c->message, message), 0);
  c->verdict = verdict;
  c->seconds = seconds;
  return c;
}

static void set_details(report_case_t *c, const char *reqs, const char *requirement,
                        const char *expected, const char *actual, const char *evidence,
                        const char *output) {
  ck_assert_int_eq(report_set(&c->requirements, reqs), 0);
  ck_assert_int_eq(report_set(&c->requirement, requirement), 0);
  ck_assert_int_eq(report_set(&c->source, "synapse/replication/tcp/handler.py@v1.66.0"), 0);
  ck_assert_int_eq(report_set(&c->file, "suites/protocol_handshake.c"), 0);
  c->line = 120;
  ck_assert_int_eq(report_set(&c->expected, expected), 0);
  ck_assert_int_eq(report_set(&c->actual, actual), 0);
  ck_assert_int_eq(report_set(&c->evidence, evidence), 0);
  ck_assert_int_eq(report_set(&c->output, output), 0);
}

#define FAIL_EXPECTED "NAME worker1 before any REPLICATE"
#define FAIL_ACTUAL "REPLICATE as the first command (line 1)"
#define FAIL_EVIDENCE                         \
  "ledger: 0.001 s  hs->sut  SERVER master\n" \
  "ledger: 0.004 s  sut->hs  REPLICATE\n"     \
  "log: 2024-05-01 12:00:00,123 - replication - INFO"

/* One case per verdict in three areas, with run properties, as the runner fills it. */
static report_t *report_every_verdict(void) {
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(report_set(&r->timestamp, "2024-05-01T12:00:00"), 0);
  r->seconds = 12.5;
  ck_assert_int_eq(report_add_property(r, "profile", "profiles/refworker-modern.json"), 0);
  ck_assert_int_eq(report_add_property(r, "dialect", "modern"), 0);
  ck_assert_int_eq(report_add_property(r, "transport", "tcp"), 0);
  ck_assert_int_eq(report_add_property(r, "era", "1.66"), 0);
  add_case(r, "protocol/handshake/name-first", "protocol", VERDICT_PASS, 0.012, NULL);
  report_case_t *c = add_case(r, "protocol/handshake/replicate-after-name", "protocol",
                              VERDICT_FAIL, 0.25, "REPLICATE was sent before NAME");
  set_details(c, "HS-01, HS-02", "The worker sends NAME before REPLICATE.", FAIL_EXPECTED,
              FAIL_ACTUAL, FAIL_EVIDENCE, "worker1 | starting replication client\n");
  c = add_case(r, "protocol/framing/blank-lines", "protocol", VERDICT_NON_STRICT, 0.1,
               "blank line answered with ERROR");
  set_details(c, "FR-13", "Blank lines are ignored.", "no reply", "ERROR \"unknown command\"",
              "ledger: sut->hs ERROR", NULL);
  add_case(r, "presence/user-sync/stop", "presence", VERDICT_SKIP, 0,
           "not applicable: the profile declares no role 'sync'");
  c = add_case(r, "presence/user-sync/clear-on-shutdown", "presence", VERDICT_XFAIL, 1.5,
               "no CLEAR_USER_SYNC before EOF");
  set_details(c, "OUT-06", "The worker clears its user syncs on shutdown.", "CLEAR_USER_SYNC",
              "EOF", "ledger: sut closed", NULL);
  add_case(r, "caches/invalidate/all", "caches", VERDICT_XPASS, 0.3, NULL);
  c = add_case(r, "caches/invalidate/one", "caches", VERDICT_ERROR, 10.0,
               "SUT never became ready within 10000 ms");
  ck_assert_int_eq(report_set(&c->output, "Traceback: worker exited with status 1"), 0);
  add_case(r, "presence/user-sync/start", "presence", VERDICT_PASS, 0.02, NULL);
  return r;
}

/* Hostile text everywhere a string goes. */
#define HOSTILE_ID "protocol/<script>alert(\"id\")</script>"
#define HOSTILE_MESSAGE "\"quoted\" & 'single' <b>bold</b> </pre></dd>"
#define HOSTILE_CONTROLS "ansi \x1b[31mred\x1b[0m bell\x07 del\x7f cr\r\nnext c1\xc2\x85"
#define HOSTILE_INVALID "bad \xff\xfe overlong \xc0\xaf surrogate \xed\xa0\x80 cut \xe2\x82"
#define HOSTILE_BIDI  \
  "user \xe2\x80\xae" \
  "evil\xe2\x80\xac end"
#define LONG_EVIDENCE_LINES 20000

static char *long_evidence(void) {
  size_t size = (size_t)LONG_EVIDENCE_LINES * 48 + 64;
  char *text = malloc(size);
  ck_assert_ptr_nonnull(text);
  size_t used = 0;
  for (int i = 0; i < LONG_EVIDENCE_LINES; i++)
    used += (size_t)snprintf(text + used, size - used, "ledger line %05d <rdata> & more\n", i);
  snprintf(text + used, size - used, "END-OF-EVIDENCE");
  return text;
}

static report_t *report_hostile(void) {
  report_t *r = report_every_verdict();
  ck_assert_int_eq(
      report_add_property(r, "sut_command", "</style><script src=\"x.js\"></script><link href=x>"),
      0);
  report_case_t *c = add_case(r, HOSTILE_ID, "protocol", VERDICT_FAIL, 0.5, HOSTILE_MESSAGE);
  char *evidence = long_evidence();
  set_details(c, "HS-03,<i>HS-04</i>", "<img src=x onerror=alert(1)> sentence", HOSTILE_CONTROLS,
              HOSTILE_INVALID, evidence, HOSTILE_BIDI);
  free(evidence);
  return r;
}

/* The text of the HTML body as a person reads it: tags removed, the entities the writer
 * and Chromium's serializer use decoded, whitespace runs collapsed to one space. */
static char *html_text(const char *html) {
  const char *body = strstr(html, "<body");
  if (body == NULL) body = html;
  char *text = malloc(strlen(body) + 1);
  ck_assert_ptr_nonnull(text);
  /* clang-format off */
  static const struct { const char *entity, *text; } entities[] = {
      {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"},
      {"&nbsp;", " "}, {"&middot;", "\xc2\xb7"}, {"&mdash;", "\xe2\x80\x94"}};
  /* clang-format on */
  size_t used = 0;
  for (const char *p = body; *p != '\0';) {
    const char *piece = NULL;
    size_t skip = 1;
    if (*p == '<') {
      const char *end = strchr(p, '>');
      skip = end != NULL ? (size_t)(end - p) + 1 : strlen(p);
      piece = " ";
    } else if (*p == '&') {
      for (size_t i = 0; i < sizeof entities / sizeof entities[0]; i++) {
        if (strncmp(p, entities[i].entity, strlen(entities[i].entity)) == 0) {
          piece = entities[i].text;
          skip = strlen(entities[i].entity);
        }
      }
    } else if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
      piece = " ";
    }
    if (piece == NULL) {
      text[used++] = *p;
    } else if (strcmp(piece, " ") == 0) {
      if (used > 0 && text[used - 1] != ' ') text[used++] = ' ';
    } else {
      memcpy(text + used, piece, strlen(piece));
      used += strlen(piece);
    }
    p += skip;
  }
  text[used] = '\0';
  return own(text);
}

/* The part of html from `<section id="name"` to its `</section>` (a malloc'd copy), or
 * NULL if there is no such section. */
static char *html_section(const char *html, const char *name) {
  char open[64];
  snprintf(open, sizeof open, "<section id=\"%s\"", name);
  const char *start = strstr(html, open);
  if (start == NULL) return NULL;
  const char *end = strstr(start, "</section>");
  ck_assert_ptr_nonnull(end);
  return own(strndup(start, (size_t)(end - start)));
}

static char *section_text(const char *html, const char *name) {
  char *section = html_section(html, name);
  ck_assert_msg(section != NULL, "no section '%s' in the HTML", name);
  return html_text(section);
}

static void assert_contains(const char *haystack, const char *needle, const char *where) {
  ck_assert_msg(strstr(haystack, needle) != NULL, "%s: [%s] not found", where, needle);
}

static void assert_lacks(const char *haystack, const char *needle, const char *where) {
  ck_assert_msg(strcasestr(haystack, needle) == NULL, "%s: [%s] must not appear", where, needle);
}

static size_t count_of(const char *haystack, const char *needle) {
  size_t n = 0;
  for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

/* Valid UTF-8 without raw C0 control characters other than LF and TAB (and without
 * DEL unless allow_del: JSON may carry it raw), checked by jansson's decoder rather
 * than the writer's own. */
static void assert_clean_utf8(const char *text, int allow_del, const char *where) {
  json_t *check = json_stringn(text, strlen(text));
  ck_assert_msg(check != NULL, "%s is not valid UTF-8", where);
  json_decref(check);
  for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
    ck_assert_msg(*p >= 0x20 ? (*p != 0x7f || allow_del) : (*p == '\n' || *p == '\t'),
                  "%s: raw control byte 0x%02x at offset %zu", where, *p,
                  (size_t)(p - (const unsigned char *)text));
}

/* The rules for a file that must load nothing from anywhere. */
static void assert_self_contained(const char *html) {
  static const char *const forbidden[] = {"<script", "<link",  "<img",    "<iframe",
                                          "<object", "<embed", "@import", "url(",
                                          "src=\"",  "src='",  "<base",   "@font-face"};
  for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
    assert_lacks(html, forbidden[i], "HTML");
  assert_lacks(html, "http://", "HTML");
  assert_lacks(html, "https://", "HTML");
  for (const char *p = html; (p = strstr(p, "href=\"")) != NULL; p += 6)
    ck_assert_msg(p[6] == '#', "HTML links outside the file: %.60s", p);
  assert_contains(html, "Content-Security-Policy\" content=\"default-src 'none'", "HTML");
}

/* ---- report_io --------------------------------------------------------------- */

START_TEST(test_requirement_ids_split) {
  const char *list = " HS-01, ,HS-02 ,\tFR-13,,";
  const char *expected[] = {"HS-01", "HS-02", "FR-13"};
  size_t len, n = 0;
  for (const char *id; (id = report_io_next_requirement(&list, &len)) != NULL; n++) {
    ck_assert_uint_lt(n, 3);
    ck_assert_uint_eq(len, strlen(expected[n]));
    ck_assert_int_eq(strncmp(id, expected[n], len), 0);
  }
  ck_assert_uint_eq(n, 3);
  const char *none = NULL, *blank = " , ";
  ck_assert_ptr_null(report_io_next_requirement(&none, &len));
  ck_assert_ptr_null(report_io_next_requirement(&blank, &len));
}
END_TEST

START_TEST(test_utf8_sanitize_and_seconds) {
  char *clean = report_io_utf8_sanitize("ok \xc3\xa9 \x1b" HOSTILE_INVALID);
  ck_assert_str_eq(clean,
                   "ok \xc3\xa9 \x1b"
                   "bad \xef\xbf\xbd\xef\xbf\xbd overlong \xef\xbf\xbd\xef\xbf\xbd "
                   "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd cut \xef\xbf\xbd");
  free(clean);
  ck_assert_ptr_null(report_io_utf8_sanitize(NULL));
  char buf[48];
  report_io_format_seconds(1.2345, buf, sizeof buf);
  ck_assert_str_eq(buf, "1.235");
  report_io_format_seconds(NAN, buf, sizeof buf);
  ck_assert_str_eq(buf, "0.000");
  report_io_format_seconds(-3, buf, sizeof buf);
  ck_assert_str_eq(buf, "0.000");
  ck_assert(report_io_round_seconds(0.0126) == 0.013);
}
END_TEST

START_TEST(test_case_name_area_and_verdict) {
  report_case_t c = {0};
  char buf[48];
  ck_assert_str_eq(report_io_case_name(&c, 4, buf, sizeof buf), "unnamed-5");
  ck_assert_ptr_null(report_io_case_area(&c));
  c.id = "presence/user-sync/stop";
  char *area = report_io_case_area(&c);
  ck_assert_str_eq(area, "presence");
  free(area);
  c.area = "caches";
  area = report_io_case_area(&c);
  ck_assert_str_eq(area, "caches");
  free(area);
  c.verdict = (verdict_t)42;
  ck_assert_int_eq(report_io_verdict(&c), VERDICT_ERROR);
  ck_assert(report_io_case_fails(&c, 0));
  c.verdict = VERDICT_NON_STRICT;
  ck_assert(!report_io_case_fails(&c, 0));
  ck_assert(report_io_case_fails(&c, 1));
  c.verdict = VERDICT_XFAIL;
  ck_assert(!report_io_case_fails(&c, 1));
}
END_TEST

/* ---- HTML ---------------------------------------------------------------------- */

START_TEST(test_html_shows_every_verdict_where_it_belongs) {
  report_t *r = report_every_verdict();
  char *path = write_report(r, html_report_write_file, "report.html");
  char *html = read_all(path);
  assert_self_contained(html);
  assert_clean_utf8(html, 0, "HTML");
  char *text = html_text(html);
  assert_contains(text, "replcheck FAILED", "header");
  assert_contains(text, "Started 2024-05-01T12:00:00 UTC \xc2\xb7 took 12.500 s", "header");
  assert_contains(text, "2 tests fail the run, 2 warnings.", "header");

  char *summary = html_section(html, "summary");
  char *summary_text = html_text(summary);
  static const char *const rows[] = {"PASS 2 ",  "FAIL 1 ",  "NON-STRICT 1 ", "SKIP 1 ",
                                     "XFAIL 1 ", "XPASS 1 ", "ERROR 1 ",      "Total 8 "};
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    assert_contains(summary_text, rows[i], "summary");
  assert_contains(summary_text, "dialect modern", "summary");
  assert_contains(summary_text, "profile profiles/refworker-modern.json", "summary");
  assert_contains(summary, "class=\"n hit v-fail\"", "summary");

  char *areas = section_text(html, "by-area");
  assert_contains(areas, "protocol 3 1 1 1 0 0 0 0 FAILED", "by area");
  assert_contains(areas, "presence 3 1 0 0 1 1 0 0 PASSED", "by area");
  assert_contains(areas, "caches 2 0 0 0 0 0 1 1 FAILED", "by area");
  assert_contains(areas, "All areas 8 2 1 1 1 1 1 1", "by area");

  char *failures = html_section(html, "failures");
  char *failures_text = html_text(failures);
  ck_assert_uint_eq(count_of(failures, "<article"), 2);
  assert_contains(failures_text,
                  "FAIL protocol/handshake/replicate-after-name 0.250 s REPLICATE was sent "
                  "before NAME Requirement HS-01 HS-02 The worker sends NAME before REPLICATE. "
                  "Source synapse/replication/tcp/handler.py@v1.66.0 Location "
                  "suites/protocol_handshake.c:120 Expected " FAIL_EXPECTED " Actual " FAIL_ACTUAL,
                  "failures");
  assert_contains(failures, "<pre class=\"evidence\">ledger: 0.001 s  hs-&gt;sut  SERVER master\n",
                  "failures");
  assert_contains(failures_text, "ledger: 0.004 s sut->hs REPLICATE log: 2024-05-01", "failures");
  assert_contains(failures, "<pre class=\"output\">worker1 | starting replication client\n</pre>",
                  "failures");
  assert_contains(failures_text, "ERROR caches/invalidate/one 10.000 s SUT never became ready",
                  "failures");
  assert_contains(failures_text, "Traceback: worker exited with status 1", "failures");

  char *warnings = section_text(html, "warnings");
  assert_contains(warnings, "NON-STRICT protocol/framing/blank-lines", "warnings");
  assert_contains(warnings, "counted as passed because the run is not --strict", "warnings");
  assert_contains(warnings, "XPASS caches/invalidate/all", "warnings");
  assert_contains(warnings, "Actual ERROR \"unknown command\"", "warnings");

  char *xfail = section_text(html, "expected-failures");
  assert_contains(xfail,
                  "XFAIL presence/user-sync/clear-on-shutdown 1.500 s \xe2\x80\x94 no "
                  "CLEAR_USER_SYNC before EOF Requirement OUT-06",
                  "expected failures");
  char *skipped = section_text(html, "skipped");
  assert_contains(skipped,
                  "presence/user-sync/stop not applicable: the profile declares no "
                  "role 'sync'",
                  "skipped");
  char *passed = section_text(html, "passed");
  assert_contains(passed, "protocol/handshake/name-first 0.012 s", "passed");
  assert_contains(passed, "presence/user-sync/start 0.020 s", "passed");
  assert_lacks(passed, "replicate-after-name", "passed");

  char *again = write_to_memory(r, html_report_write_stream);
  ck_assert_str_eq(again, html);
  report_destroy(r);
}
END_TEST

/* The badge and the sections follow the same rule as the exit code and JUnit. */
START_TEST(test_html_badge_follows_strict_and_verdicts) {
  report_t *r = report_create(NULL);
  char *html = write_to_memory(r, html_report_write_stream);
  assert_contains(html, "<span class=\"badge none\">NOTHING RAN</span>", "empty report");
  assert_lacks(html, "<section id=\"failures\"", "empty report");

  add_case(r, "protocol/a", "protocol", VERDICT_PASS, 0.1, NULL);
  report_case_t *c = add_case(r, "protocol/b", "protocol", VERDICT_NON_STRICT, 0.1, "should");
  html = write_to_memory(r, html_report_write_stream);
  assert_contains(html, "<span class=\"badge passed\">PASSED</span>", "non-strict run");
  assert_contains(html, "<section id=\"warnings\"", "non-strict run");
  assert_lacks(html, "<section id=\"failures\"", "non-strict run");

  r->strict = 1;
  html = write_to_memory(r, html_report_write_stream);
  assert_contains(html, "<span class=\"badge failed\">FAILED</span>", "strict run");
  char *failures = section_text(html, "failures");
  assert_contains(failures, "NON-STRICT protocol/b", "strict run");
  assert_contains(failures, "this run is --strict, so it fails", "strict run");
  assert_lacks(html, "<section id=\"warnings\"", "strict run");

  c->verdict = (verdict_t)99;
  ck_assert_int_eq(report_set(&c->id, "  "), 0);
  r->strict = 0;
  html = write_to_memory(r, html_report_write_stream);
  char *text = section_text(html, "failures");
  assert_contains(text, "ERROR unnamed-2", "invalid verdict");
  assert_contains(text, "invalid verdict", "invalid verdict");
  report_destroy(r);
}
END_TEST

START_TEST(test_html_escapes_hostile_text) {
  report_t *r = report_hostile();
  char *path = write_report(r, html_report_write_file, "hostile.html");
  char *html = read_all(path);
  assert_self_contained(html);
  assert_clean_utf8(html, 0, "HTML");
  assert_lacks(html, "<b>", "HTML");
  assert_lacks(html, "<i>", "HTML");
  assert_lacks(html, "</pre></dd>", "HTML");
  ck_assert_uint_eq(count_of(html, "</style>"), 1);
  ck_assert_uint_eq(count_of(html, "<article"), 5);
  ck_assert_uint_eq(count_of(html, "<pre class=\"evidence\">"), 4);
  ck_assert_uint_eq(count_of(html, "</pre>"), 7);

  char *text = html_text(html);
  /* What a person reads is the input, character for character. */
  assert_contains(text, HOSTILE_ID, "text");
  assert_contains(text, HOSTILE_MESSAGE, "text");
  assert_contains(text, "<img src=x onerror=alert(1)> sentence", "text");
  assert_contains(text, "</style><script src=\"x.js\"></script><link href=x>", "text");
  /* Controls, invisible formatting and bad bytes are shown by value, marked. */
  assert_contains(html,
                  "ansi <span class=\"ctl\">\\x1b</span>[31mred<span class=\"ctl\">\\x1b"
                  "</span>[0m bell<span class=\"ctl\">\\x07</span> del<span class=\"ctl\">"
                  "\\x7f</span> cr<span class=\"ctl\">\\x0d</span>\nnext c1<span "
                  "class=\"ctl\">\\u0085</span>",
                  "controls");
  assert_contains(html,
                  "bad <span class=\"bad\">\\xff</span><span class=\"bad\">\\xfe</span> "
                  "overlong <span class=\"bad\">\\xc0</span><span class=\"bad\">\\xaf"
                  "</span> surrogate <span class=\"bad\">\\xed</span><span class=\"bad\">"
                  "\\xa0</span><span class=\"bad\">\\x80</span> cut <span class=\"bad\">"
                  "\\xe2</span><span class=\"bad\">\\x82</span>",
                  "invalid UTF-8");
  assert_contains(html,
                  "user <span class=\"ctl\">\\u202e</span>evil<span class=\"ctl\">\\u202c"
                  "</span> end",
                  "bidi controls");
  /* Very long evidence is kept whole. */
  ck_assert_uint_eq(count_of(html, "&lt;rdata&gt; &amp; more\n"), LONG_EVIDENCE_LINES);
  assert_contains(html, "ledger line 19999 &lt;rdata&gt; &amp; more\nEND-OF-EVIDENCE</pre>",
                  "long evidence");
  report_destroy(r);
}
END_TEST

/* ---- JSON ---------------------------------------------------------------------- */

static json_t *load_json(const char *path) {
  json_error_t error;
  json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
  ck_assert_msg(doc != NULL, "%s:%d:%d: %s", path, error.line, error.column, error.text);
  return doc;
}

static void assert_json_text(json_t *object, const char *key, const char *expected,
                             const char *where) {
  json_t *value = json_object_get(object, key);
  ck_assert_msg(value != NULL, "%s: no field '%s'", where, key);
  if (expected == NULL) {
    ck_assert_msg(json_is_null(value), "%s: '%s' should be null", where, key);
    return;
  }
  ck_assert_msg(json_is_string(value), "%s: '%s' should be a string", where, key);
  ck_assert_msg(json_string_length(value) == strlen(expected) &&
                    memcmp(json_string_value(value), expected, strlen(expected)) == 0,
                "%s: '%s' is [%.200s], expected [%.200s]", where, key, json_string_value(value),
                expected);
}

/* Compares a case object with the model case it came from (text given as valid UTF-8). */
static void assert_json_case(json_t *object, const report_case_t *c, const char *where) {
  ck_assert_uint_eq(json_object_size(object), 14);
  assert_json_text(object, "id", c->id, where);
  assert_json_text(object, "area", c->area, where);
  assert_json_text(object, "requirement", c->requirement, where);
  assert_json_text(object, "source", c->source, where);
  assert_json_text(object, "file", c->file, where);
  assert_json_text(object, "verdict", verdict_name(c->verdict), where);
  assert_json_text(object, "message", c->message, where);
  assert_json_text(object, "expected", c->expected, where);
  assert_json_text(object, "actual", c->actual, where);
  assert_json_text(object, "evidence", c->evidence, where);
  assert_json_text(object, "output", c->output, where);
  json_t *line = json_object_get(object, "line");
  if (c->line > 0)
    ck_assert_int_eq(json_integer_value(line), c->line);
  else
    ck_assert(json_is_null(line));
  json_t *seconds = json_object_get(object, "seconds");
  ck_assert_msg(json_is_real(seconds), "%s: seconds should be a real", where);
  ck_assert_msg(fabs(json_real_value(seconds) - c->seconds) < 0.0005, "%s: seconds %f vs %f", where,
                json_real_value(seconds), c->seconds);
  json_t *ids = json_object_get(object, "requirements");
  ck_assert_msg(json_is_array(ids), "%s: requirements should be an array", where);
  const char *cursor = c->requirements;
  size_t len, n = 0;
  for (const char *id; (id = report_io_next_requirement(&cursor, &len)) != NULL; n++) {
    const char *got = json_string_value(json_array_get(ids, n));
    ck_assert_msg(got != NULL && strlen(got) == len && strncmp(got, id, len) == 0,
                  "%s: requirements[%zu] is [%s]", where, n, got != NULL ? got : "(none)");
  }
  ck_assert_uint_eq(json_array_size(ids), n);
}

START_TEST(test_json_matches_the_model) {
  report_t *r = report_every_verdict();
  char *path = write_report(r, json_report_write_file, "report.json");
  json_t *doc = load_json(path);
  ck_assert_int_eq(json_integer_value(json_object_get(doc, "format")), 1);
  json_t *tool = json_object_get(doc, "tool");
  assert_json_text(tool, "name", "replcheck", "tool");
  assert_json_text(tool, "version", REPLCHECK_VERSION, "tool");
  assert_json_text(doc, "name", r->name, "report");
  assert_json_text(doc, "timestamp", "2024-05-01T12:00:00", "report");
  assert_json_text(doc, "hostname", r->hostname, "report");
  ck_assert(json_real_value(json_object_get(doc, "seconds")) == 12.5);
  ck_assert(json_is_false(json_object_get(doc, "strict")));
  json_t *props = json_object_get(doc, "properties");
  ck_assert_uint_eq(json_object_size(props), r->property_count);
  for (size_t i = 0; i < r->property_count; i++)
    assert_json_text(props, r->properties[i].name, r->properties[i].value, "properties");
  json_t *counts = json_object_get(doc, "counts");
  ck_assert_uint_eq(json_object_size(counts), VERDICT_COUNT);
  for (int v = 0; v < VERDICT_COUNT; v++)
    ck_assert_int_eq(json_integer_value(json_object_get(counts, verdict_name((verdict_t)v))),
                     (json_int_t)report_count(r, (verdict_t)v));
  json_t *cases = json_object_get(doc, "cases");
  ck_assert_uint_eq(json_array_size(cases), r->case_count);
  for (size_t i = 0; i < r->case_count; i++) {
    char where[64];
    snprintf(where, sizeof where, "cases[%zu]", i);
    assert_json_case(json_array_get(cases, i), &r->cases[i], where);
  }
  ck_assert_uint_eq(json_object_size(doc), 10);
  json_decref(doc);

  r->strict = 1;
  char *text = write_to_memory(r, json_report_write_stream);
  assert_contains(text, "\"strict\": true", "strict JSON");
  assert_contains(text, "\"seconds\": 0.012,", "JSON numbers");
  report_destroy(r);
}
END_TEST

START_TEST(test_json_hostile_and_absent_text) {
  report_t *r = report_hostile();
  report_case_t *bare = report_add_case(r);
  ck_assert_int_eq(report_set(&bare->id, "http/version-header/present"), 0);
  bare->verdict = (verdict_t)77;
  char *path = write_report(r, json_report_write_file, "hostile.json");
  char *raw = read_all(path);
  assert_clean_utf8(raw, 1, "JSON file");
  json_t *doc = load_json(path);
  json_t *cases = json_object_get(doc, "cases");
  ck_assert_uint_eq(json_array_size(cases), 10);
  json_t *hostile = json_array_get(cases, 8);
  const report_case_t *c = &r->cases[8];
  assert_json_text(hostile, "id", HOSTILE_ID, "hostile");
  assert_json_text(hostile, "message", HOSTILE_MESSAGE, "hostile");
  /* Controls are data in JSON: kept exactly (JSON escapes them). */
  assert_json_text(hostile, "expected", HOSTILE_CONTROLS, "hostile");
  assert_json_text(hostile, "actual",
                   "bad \xef\xbf\xbd\xef\xbf\xbd overlong \xef\xbf\xbd\xef\xbf\xbd surrogate "
                   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd cut \xef\xbf\xbd",
                   "hostile");
  assert_json_text(hostile, "evidence", c->evidence, "hostile");
  assert_json_text(hostile, "output", HOSTILE_BIDI, "hostile");
  json_t *ids = json_object_get(hostile, "requirements");
  ck_assert_str_eq(json_string_value(json_array_get(ids, 1)), "<i>HS-04</i>");
  assert_json_text(json_object_get(doc, "properties"), "sut_command",
                   "</style><script src=\"x.js\"></script><link href=x>", "properties");

  json_t *last = json_array_get(cases, 9);
  assert_json_text(last, "area", "http", "bare case");
  assert_json_text(last, "verdict", "ERROR", "bare case");
  static const char *const absent[] = {"requirement", "source", "file",     "message",
                                       "expected",    "actual", "evidence", "output"};
  for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
    assert_json_text(last, absent[i], NULL, "bare case");
  ck_assert(json_is_null(json_object_get(last, "line")));
  ck_assert_uint_eq(json_array_size(json_object_get(last, "requirements")), 0);
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(doc, "counts"), "ERROR")), 2);
  json_decref(doc);
  report_destroy(r);
}
END_TEST

/* ---- locale and files -------------------------------------------------------------- */

START_TEST(test_numbers_do_not_depend_on_locale) {
  report_t *r = report_hostile();
  r->cases[0].seconds = 1234.5;
  char *html_c = write_to_memory(r, html_report_write_stream);
  char *json_c = write_to_memory(r, json_report_write_stream);
  const char *locale = setlocale(LC_ALL, "de_DE.UTF-8");
  ck_assert_msg(locale != NULL,
                "cannot set the de_DE.UTF-8 locale: run ci/install-deps.sh, "
                "which generates it");
  ck_assert_str_eq(localeconv()->decimal_point, ",");
  char *html_de = write_to_memory(r, html_report_write_stream);
  char *json_de = write_to_memory(r, json_report_write_stream);
  setlocale(LC_ALL, "C");
  ck_assert_msg(strcmp(html_c, html_de) == 0, "HTML differs under de_DE.UTF-8");
  ck_assert_msg(strcmp(json_c, json_de) == 0, "JSON differs under de_DE.UTF-8");
  assert_contains(html_de, "1234.500 s", "HTML");
  assert_contains(json_de, "\"seconds\": 1234.5,", "JSON");
  assert_contains(json_de, "\"seconds\": 12.5,", "JSON");
  report_destroy(r);
}
END_TEST

static const struct {
  const char *name;
  write_file_fn write_file;
  write_stream_fn write_stream;
  const char *empty_path_error;
} writers[] = {
    {"html", html_report_write_file, html_report_write_stream, "html report: no output path given"},
    {"json", json_report_write_file, json_report_write_stream, "json report: no output path given"},
};

START_TEST(test_missing_directory_fails_cleanly) {
  report_t *r = report_every_verdict();
  char *path = temp_path("missing/sub/report.out");
  rc_error_t err = {{0}};
  ck_assert_int_eq(writers[_i].write_file(r, path, &err), -1);
  char expected[RC_ERROR_MAX];
  snprintf(expected, sizeof expected, "%s: %s", path, strerror(ENOENT));
  ck_assert_str_eq(err.msg, expected);
  char *left = own(test_list_dir(temp_dir));
  ck_assert_str_eq(left, "");
  ck_assert_int_eq(writers[_i].write_file(r, "", &err), -1);
  ck_assert_str_eq(err.msg, writers[_i].empty_path_error);
  ck_assert_int_eq(writers[_i].write_file(NULL, path, &err), -1);
  snprintf(expected, sizeof expected, "%s: no report to write", path);
  ck_assert_str_eq(err.msg, expected);
  report_destroy(r);
}
END_TEST

START_TEST(test_existing_file_is_replaced_whole) {
  char *path = temp_path("report.out");
  char junk[64 * 1024];
  memset(junk, 'J', sizeof junk);
  ck_assert_int_eq(test_write_file(path, junk, sizeof junk), 0);
  report_t *r = report_every_verdict();
  rc_error_t err = {{0}};
  ck_assert_msg(writers[_i].write_file(r, path, &err) == 0, "%s", err.msg);
  char *expected = write_to_memory(r, writers[_i].write_stream);
  char *written = read_all(path);
  ck_assert_str_eq(written, expected);
  char *left = own(test_list_dir(temp_dir));
  ck_assert_str_eq(left, "report.out");
  report_destroy(r);
}
END_TEST

/* A write error half-way (file size limit) leaves the previous report as it was and no
 * temporary file behind; a full device is reported by the stream writers. */
START_TEST(test_write_error_keeps_previous_report) {
  char *path = temp_path("report.out");
  const char *previous = "previous report\n";
  ck_assert_int_eq(test_write_file(path, previous, strlen(previous)), 0);
  report_t *r = report_hostile();
  struct rlimit saved, limited;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
  limited = saved;
  limited.rlim_cur = 16 * 1024;
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limited), 0);
  rc_error_t err = {{0}};
  int rc = writers[_i].write_file(r, path, &err);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
  signal(SIGXFSZ, old_handler);
  ck_assert_int_eq(rc, -1);
  char expected[RC_ERROR_MAX];
  snprintf(expected, sizeof expected, "%s: %s", path, strerror(EFBIG));
  ck_assert_str_eq(err.msg, expected);
  char *content = read_all(path);
  ck_assert_str_eq(content, previous);
  char *left = own(test_list_dir(temp_dir));
  ck_assert_str_eq(left, "report.out");

  FILE *full = fopen("/dev/full", "w");
  ck_assert_ptr_nonnull(full);
  errno = 0;
  ck_assert_int_eq(writers[_i].write_stream(r, full), -1);
  ck_assert_int_eq(errno, ENOSPC);
  fclose(full);
  ck_assert_int_eq(writers[_i].write_stream(NULL, stdout), -1);
  ck_assert_int_eq(errno, EINVAL);
  report_destroy(r);
}
END_TEST

/* ---- Chromium -------------------------------------------------------------------- */

/* Runs headless Chromium on the file with the given extra flags, under a deadline. */
static void run_chromium(const char *html_path, const char *flags, const char *stdout_path) {
  ck_assert_msg(test_run("command -v chromium >/dev/null 2>&1") == 0,
                "chromium is not installed: run ci/install-deps.sh (CI installs it); the HTML "
                "report test needs it to render the report");
  char *profile = temp_path("chromium-profile");
  char *log = temp_path("chromium.log");
  char command[8192];
  snprintf(command, sizeof command,
           "HOME='%s' timeout 60 chromium --headless --no-sandbox --disable-gpu "
           "--disable-background-networking --disable-component-update --disable-sync "
           "--no-first-run --user-data-dir='%s' %s 'file://%s' >'%s' 2>'%s'",
           temp_dir, profile, flags, html_path, stdout_path, log);
  int rc = test_run(command);
  char *errors = test_read_file(log, NULL);
  ck_assert_msg(rc == 0, "chromium %s exited with %d (124: the 60 s deadline passed):\n%.3000s",
                flags, rc, errors != NULL ? errors : "(no output)");
  free(errors);
}

static void keep_for_inspection(const char *path, const char *name) {
  const char *keep = getenv("REPLCHECK_TEST_KEEP_DIR");
  if (keep == NULL || keep[0] == '\0') return;
  char command[4096];
  snprintf(command, sizeof command, "cp '%s' '%s/%s'", path, keep, name);
  ck_assert_int_eq(test_run(command), 0);
}

START_TEST(test_chromium_renders_what_a_person_must_see) {
  report_t *r = report_hostile();
  char *path = write_report(r, html_report_write_file, "report.html");
  keep_for_inspection(path, "report.html");
  char *dom_path = temp_path("dom.html");
  run_chromium(path, "--dump-dom", dom_path);
  char *dom = read_all(dom_path);
  /* Hostile text stayed text: no element came out of it. */
  assert_lacks(dom, "<script", "rendered DOM");
  assert_lacks(dom, "<img", "rendered DOM");
  assert_lacks(dom, "<link", "rendered DOM");
  ck_assert_uint_eq(count_of(dom, "<article"), 5);
  ck_assert_uint_eq(count_of(dom, "<pre class=\"evidence\">"), 4);

  char *summary = html_section(dom, "summary");
  ck_assert_ptr_nonnull(summary);
  char *summary_text = html_text(summary);
  static const char *const rows[] = {"PASS 2 ",  "FAIL 2 ",  "NON-STRICT 1 ", "SKIP 1 ",
                                     "XFAIL 1 ", "XPASS 1 ", "ERROR 1 ",      "Total 9 "};
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    assert_contains(summary_text, rows[i], "rendered summary");
  char *text = html_text(dom);
  assert_contains(text, "replcheck FAILED", "rendered header");
  assert_contains(text, "Requirement HS-01 HS-02 The worker sends NAME before REPLICATE.",
                  "rendered failure");
  assert_contains(text, "Expected " FAIL_EXPECTED " Actual " FAIL_ACTUAL, "rendered failure");
  assert_contains(text, "ledger: 0.004 s sut->hs REPLICATE", "rendered evidence");
  assert_contains(text, "worker1 | starting replication client", "rendered SUT output");
  assert_contains(text, HOSTILE_ID, "rendered hostile id");
  assert_contains(text, "<img src=x onerror=alert(1)> sentence", "rendered hostile requirement");
  assert_contains(text, "ledger line 19999 <rdata> & more END-OF-EVIDENCE", "rendered evidence");

  char *png = temp_path("report.png");
  char flags[4096];
  snprintf(flags, sizeof flags, "--hide-scrollbars --window-size=1280,2000 --screenshot='%s'", png);
  char *shot_out = temp_path("screenshot.out");
  run_chromium(path, flags, shot_out);
  size_t len = 0;
  char *image = test_read_file(png, &len);
  ck_assert_msg(image != NULL, "chromium wrote no screenshot at %s", png);
  ck_assert_msg(len > 10000 && memcmp(image, "\x89PNG\r\n\x1a\n", 8) == 0,
                "%s is not a plausible PNG (%zu bytes)", png, len);
  keep_for_inspection(png, "report.png");
  free(image);
  report_destroy(r);
}
END_TEST

static Suite *reports_suite(void) {
  Suite *s = suite_create("reports");
  TCase *io = tcase_create("report_io");
  tcase_add_test(io, test_requirement_ids_split);
  tcase_add_test(io, test_utf8_sanitize_and_seconds);
  tcase_add_test(io, test_case_name_area_and_verdict);
  suite_add_tcase(s, io);

  TCase *html = tcase_create("html");
  tcase_add_checked_fixture(html, setup, teardown);
  tcase_set_timeout(html, 60);
  tcase_add_test(html, test_html_shows_every_verdict_where_it_belongs);
  tcase_add_test(html, test_html_badge_follows_strict_and_verdicts);
  tcase_add_test(html, test_html_escapes_hostile_text);
  suite_add_tcase(s, html);

  TCase *json = tcase_create("json");
  tcase_add_checked_fixture(json, setup, teardown);
  tcase_set_timeout(json, 60);
  tcase_add_test(json, test_json_matches_the_model);
  tcase_add_test(json, test_json_hostile_and_absent_text);
  suite_add_tcase(s, json);

  TCase *files = tcase_create("files");
  tcase_add_checked_fixture(files, setup, teardown);
  tcase_set_timeout(files, 60);
  tcase_add_test(files, test_numbers_do_not_depend_on_locale);
  tcase_add_loop_test(files, test_missing_directory_fails_cleanly, 0, 2);
  tcase_add_loop_test(files, test_existing_file_is_replaced_whole, 0, 2);
  tcase_add_loop_test(files, test_write_error_keeps_previous_report, 0, 2);
  suite_add_tcase(s, files);

  TCase *browser = tcase_create("chromium");
  tcase_add_checked_fixture(browser, setup, teardown);
  tcase_set_timeout(browser, 180);
  tcase_add_test(browser, test_chromium_renders_what_a_person_must_see);
  suite_add_tcase(s, browser);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(reports_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

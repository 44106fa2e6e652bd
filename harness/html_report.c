#include "html_report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "report_io.h"

#ifndef REPLCHECK_VERSION
#define REPLCHECK_VERSION "unknown"
#endif

/* The stylesheet is the whole of the page's presentation: no fonts, images or scripts
 * are fetched (the Content-Security-Policy in <head> forbids it even if something
 * slipped in), so the file reads the same offline, attached to a CI run years later. */
static const char stylesheet[] =
    ":root{--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;"
    "--error:#8250df;--error-bg:#fbefff;--ns:#9a6700;--ns-bg:#fff8c5;--skip:#57606a;"
    "--skip-bg:#eaeef2;--xfail:#0969da;--xfail-bg:#ddf4ff;--xpass:#bc4c00;--xpass-bg:#fff1e5;"
    "--line:#d0d7de;--muted:#57606a}\n"
    "*{box-sizing:border-box}\n"
    "body{font-family:system-ui,'DejaVu Sans',sans-serif;font-size:15px;line-height:1.45;"
    "color:#1f2328;background:#fff;margin:0 auto;padding:1.5em 2em 3em;max-width:1200px}\n"
    "h1{font-size:1.6em;margin:0 0 .3em;display:flex;align-items:center;gap:.6em;"
    "flex-wrap:wrap}\n"
    "h2{font-size:1.25em;margin:1.8em 0 .6em;padding-bottom:.25em;"
    "border-bottom:1px solid var(--line)}\n"
    "h3{font-size:1.05em;margin:0 0 .5em;display:flex;gap:.6em;align-items:baseline;"
    "flex-wrap:wrap}\n"
    "h4{font-size:.95em;margin:1em 0 .3em}\n"
    "#summary h3{margin-top:1.2em}\n"
    "code,pre,.mono{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.9em}\n"
    ".meta{color:var(--muted);margin:.2em 0}\n"
    "nav{margin:1em 0;padding:.5em .8em;background:#f6f8fa;border:1px solid var(--line);"
    "border-radius:6px}\n"
    "nav a{margin-right:1.2em}\n"
    "a{color:#0969da}\n"
    ".badge{display:inline-block;padding:.15em .7em;border-radius:2em;font-size:.75em;"
    "font-weight:700;letter-spacing:.05em;color:#fff}\n"
    ".badge.passed{background:var(--pass)}.badge.failed{background:var(--fail)}"
    ".badge.none{background:var(--skip)}\n"
    ".verdict{display:inline-block;min-width:6.5em;text-align:center;padding:.05em .5em;"
    "border-radius:4px;font-weight:700;font-size:.85em;border:1px solid currentColor}\n"
    /* Each verdict class sets a colour pair; badges, count cells and case borders use it. */
    ".v-pass{--c:var(--pass);--bg:var(--pass-bg)}.v-fail{--c:var(--fail);--bg:var(--fail-bg)}"
    ".v-error{--c:var(--error);--bg:var(--error-bg)}.v-non-strict{--c:var(--ns);--bg:var(--ns-bg)}"
    ".v-skip{--c:var(--skip);--bg:var(--skip-bg)}.v-xfail{--c:var(--xfail);--bg:var(--xfail-bg)}"
    ".v-xpass{--c:var(--xpass);--bg:var(--xpass-bg)}\n"
    ".verdict,td.hit{color:var(--c);background:var(--bg)}\n"
    "td.hit{font-weight:700}\n"
    "table{border-collapse:collapse;margin:.4em 0}\n"
    "th,td{border:1px solid var(--line);padding:.3em .7em;text-align:left;"
    "vertical-align:top}\n"
    "thead th{background:#f6f8fa}\n"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\n"
    "td.zero{color:#afb8c1}\n"
    "tfoot td{font-weight:700}\n"
    ".props td:first-child{font-weight:600;white-space:nowrap}\n"
    ".props td{overflow-wrap:anywhere}\n"
    ".case{border:1px solid var(--line);border-left:6px solid var(--c);border-radius:6px;"
    "padding:.8em 1em;margin:0 0 1.2em}\n"
    ".time{color:var(--muted);font-size:.85em;font-weight:400}\n"
    ".message{font-weight:600;margin:.2em 0 .5em;white-space:pre-wrap;overflow-wrap:anywhere}\n"
    ".note{color:var(--muted);font-style:italic;margin:.2em 0 .6em}\n"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1em;margin:.5em 0}\n"
    "dt{font-weight:700}\n"
    "dd{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}\n"
    ".req{display:inline-block;font-family:ui-monospace,'DejaVu Sans Mono',monospace;"
    "font-size:.85em;background:#eaeef2;border-radius:4px;padding:0 .4em}\n"
    "pre{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:.6em .8em;"
    "margin:.2em 0;white-space:pre-wrap;overflow-wrap:anywhere;max-height:32em;overflow:auto}\n"
    ".ctl{background:#fff8c5;color:#9a6700;border-radius:3px;padding:0 .1em}\n"
    ".bad{background:#ffebe9;color:#cf222e;border-radius:3px;padding:0 .1em}\n"
    "details{border:1px solid var(--line);border-left:6px solid "
    "var(--xfail);border-radius:6px;padding:.4em .8em;margin:0 0 .6em}\n"
    "summary{cursor:pointer}\n"
    "ul.passed{columns:2 28em;padding-left:1.2em;margin:.4em 0}\n"
    "ul.passed li{break-inside:avoid}\n"
    "footer{margin-top:3em;color:var(--muted);font-size:.85em;border-top:1px solid var(--line);"
    "padding-top:.6em}\n"
    "@media print{body{padding:0;max-width:none;font-size:11pt}nav{display:none}"
    "pre{max-height:none;overflow:visible}.case{break-inside:avoid-page}"
    "h2{break-after:avoid}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n";

/* ---- output helpers ---------------------------------------------------------- */

/* Puts each string argument in turn, up to a NULL. */
static void put_all(report_io_writer_t *w, ...) {
  va_list ap;
  va_start(ap, w);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;) report_io_put(w, s);
  va_end(ap);
}

/* Characters a reader could not see or that would reorder or hide the text around them:
 * noncharacters, zero-width and bidirectional formatting controls ("Trojan Source"). */
static int is_hidden_format(long cp) {
  return cp == 0x061C || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF ||
         cp == 0xFFFE || cp == 0xFFFF;
}

/* Writes text as HTML character data, safe in element content and in quoted
 * attributes. Markup characters become entities; LF and TAB stay (the CSS shows them);
 * every other control character, the hidden format characters above and each byte of an
 * ill-formed UTF-8 sequence become a highlighted "\xNN" / "\uNNNN" in a span, so the
 * reader sees exactly which bytes were there. Plain runs go out in one write. */
static void put_text(report_io_writer_t *w, const char *text) {
  if (text == NULL) return;
  const unsigned char *s = (const unsigned char *)text;
  size_t n = strlen(text), run = 0, i = 0;
  while (i < n) {
    long cp;
    size_t len = report_io_utf8_decode(s + i, n - i, &cp);
    const char *entity = NULL;
    int hidden = 0;
    switch (cp) {
      case '&':
        entity = "&amp;";
        break;
      case '<':
        entity = "&lt;";
        break;
      case '>':
        entity = "&gt;";
        break;
      case '"':
        entity = "&quot;";
        break;
      case '\'':
        entity = "&#39;";
        break;
      case '\n':
      case '\t':
        break;
      default:
        hidden = cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || is_hidden_format(cp);
    }
    if (entity == NULL && !hidden) {
      run += len;
      i += len;
      continue;
    }
    report_io_put_bytes(w, text + i - run, run);
    run = 0;
    char visible[16];
    if (entity != NULL) {
      report_io_put(w, entity);
    } else if (cp < 0) {
      for (size_t k = 0; k < len; k++) {
        snprintf(visible, sizeof visible, "\\x%02x", s[i + k]);
        put_all(w, "<span class=\"bad\">", visible, "</span>", NULL);
      }
    } else {
      snprintf(visible, sizeof visible, cp < 0x80 ? "\\x%02lx" : "\\u%04lx", cp);
      put_all(w, "<span class=\"ctl\">", visible, "</span>", NULL);
    }
    i += len;
  }
  report_io_put_bytes(w, text + n - run, run);
}

/* The verdict as people read it ("NON-STRICT") and its CSS class ("v-non-strict"). */
static const char *verdict_label(verdict_t v) {
  return v == VERDICT_NON_STRICT ? "NON-STRICT" : verdict_name(v);
}

static const char *verdict_class(verdict_t v) {
  static const char *const classes[VERDICT_COUNT] = {
      [VERDICT_PASS] = "v-pass",
      [VERDICT_FAIL] = "v-fail",
      [VERDICT_NON_STRICT] = "v-non-strict",
      [VERDICT_SKIP] = "v-skip",
      [VERDICT_XFAIL] = "v-xfail",
      [VERDICT_XPASS] = "v-xpass",
      [VERDICT_ERROR] = "v-error",
  };
  return (unsigned)v < VERDICT_COUNT ? classes[v] : "v-error";
}

static const char *verdict_meaning(verdict_t v) {
  switch (v) {
    case VERDICT_PASS:
      return "the requirement is met";
    case VERDICT_FAIL:
      return "a MUST requirement is not met (or a SHOULD, under --strict)";
    case VERDICT_NON_STRICT:
      return "a SHOULD requirement is not met; a failure only under --strict";
    case VERDICT_SKIP:
      return "not run: not applicable to the profile, opted out or filtered";
    case VERDICT_XFAIL:
      return "failed, and listed as expected to fail";
    case VERDICT_XPASS:
      return "listed as expected to fail, but passed";
    default:
      return "harness or set-up problem (SUT not ready, crash, timeout)";
  }
}

static void put_verdict(report_io_writer_t *w, verdict_t v) {
  put_all(w, "<span class=\"verdict ", verdict_class(v), "\">", verdict_label(v), "</span>", NULL);
}

static void put_count_cell(report_io_writer_t *w, size_t n, verdict_t v) {
  if (n == 0)
    report_io_put(w, "<td class=\"n zero\">");
  else
    put_all(w, "<td class=\"n hit ", verdict_class(v), "\">", NULL);
  report_io_put_size(w, n);
  report_io_put(w, "</td>");
}

static void put_case_name(report_io_writer_t *w, const report_case_t *c, size_t index) {
  char buf[48];
  report_io_put(w, "<code>");
  put_text(w, report_io_case_name(c, index, buf, sizeof buf));
  report_io_put(w, "</code>");
}

static void put_anchor(report_io_writer_t *w, size_t index) {
  report_io_put(w, "case-");
  report_io_put_size(w, index + 1);
}

/* ---- summary --------------------------------------------------------------------- */

typedef struct summary {
  size_t counts[VERDICT_COUNT];
  size_t failing;  /* cases that fail the run (report_io_case_fails) */
  size_t warnings; /* NON_STRICT and XPASS that do not fail it */
} summary_t;

static summary_t summarise(const report_t *report) {
  summary_t s = {{0}, 0, 0};
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    verdict_t v = report_io_verdict(c);
    s.counts[v]++;
    if (report_io_case_fails(c, report->strict))
      s.failing++;
    else if (v == VERDICT_NON_STRICT || v == VERDICT_XPASS)
      s.warnings++;
  }
  return s;
}

/* The run's outcome as the badge shows it: FAILED by the exit code's rule, NOTHING RAN
 * when no test was run (so an empty selection never looks green), else PASSED. */
static const char *run_outcome(const report_t *report, const summary_t *s, const char **cls) {
  if (s->failing > 0) {
    *cls = "failed";
    return "FAILED";
  }
  if (report->case_count == s->counts[VERDICT_SKIP]) {
    *cls = "none";
    return "NOTHING RAN";
  }
  *cls = "passed";
  return "PASSED";
}

static void put_badge(report_io_writer_t *w, const report_t *report, const summary_t *s) {
  const char *cls;
  const char *outcome = run_outcome(report, s, &cls);
  put_all(w, "<span class=\"badge ", cls, "\">", outcome, "</span>", NULL);
}

static void put_header(report_io_writer_t *w, const report_t *report, const summary_t *s) {
  const char *name = report_io_is_blank(report->name) ? "replcheck" : report->name;
  report_io_put(w, "<header>\n<h1>");
  put_text(w, name);
  report_io_put(w, " ");
  put_badge(w, report, s);
  report_io_put(w, "</h1>\n<p class=\"meta\">Started ");
  put_text(w, report_io_is_blank(report->timestamp) ? "(unknown)" : report->timestamp);
  report_io_put(w, " UTC &middot; took ");
  report_io_put_seconds(w, report->seconds);
  report_io_put(w, " s &middot; on ");
  put_text(w, report_io_is_blank(report->hostname) ? "(unknown host)" : report->hostname);
  report_io_put(w, " &middot; ");
  report_io_put_size(w, report->case_count);
  report_io_put(w, report->case_count == 1 ? " test" : " tests");
  report_io_put(w, report->strict ? " &middot; --strict" : "");
  report_io_put(w, "</p>\n");
  if (s->failing > 0 || s->warnings > 0) {
    report_io_put(w, "<p class=\"meta\">");
    report_io_put_size(w, s->failing);
    report_io_put(w, s->failing == 1 ? " test fails the run" : " tests fail the run");
    if (s->warnings > 0) {
      report_io_put(w, ", ");
      report_io_put_size(w, s->warnings);
      report_io_put(w, s->warnings == 1 ? " warning" : " warnings");
    }
    report_io_put(w, ".</p>\n");
  }
  report_io_put(w, "</header>\n");
}

static void put_nav(report_io_writer_t *w, const summary_t *s) {
  size_t failures = s->failing, expected = s->counts[VERDICT_XFAIL];
  report_io_put(w,
                "<nav>Contents: <a href=\"#summary\">Summary</a><a href=\"#by-area\">By "
                "area</a>");
  struct {
    const char *anchor, *label;
    size_t n;
  } links[] = {
      {"failures", "Failures and errors", failures},
      {"warnings", "Warnings", s->warnings},
      {"expected-failures", "Expected failures", expected},
      {"skipped", "Skipped", s->counts[VERDICT_SKIP]},
      {"passed", "Passed", s->counts[VERDICT_PASS]},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    if (links[i].n == 0) continue;
    put_all(w, "<a href=\"#", links[i].anchor, "\">", links[i].label, " (", NULL);
    report_io_put_size(w, links[i].n);
    report_io_put(w, ")</a>");
  }
  report_io_put(w, "</nav>\n");
}

static void put_summary(report_io_writer_t *w, const report_t *report, const summary_t *s) {
  report_io_put(w,
                "<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"counts\">\n"
                "<thead><tr><th>Verdict</th><th class=\"n\">Tests</th><th>Meaning</th>"
                "</tr></thead>\n<tbody>\n");
  for (int v = 0; v < VERDICT_COUNT; v++) {
    report_io_put(w, "<tr><td>");
    put_verdict(w, (verdict_t)v);
    report_io_put(w, "</td>");
    put_count_cell(w, s->counts[v], (verdict_t)v);
    put_all(w, "<td>", verdict_meaning((verdict_t)v), "</td></tr>\n", NULL);
  }
  report_io_put(w, "</tbody>\n<tfoot><tr><td>Total</td><td class=\"n\">");
  report_io_put_size(w, report->case_count);
  report_io_put(w,
                "</td><td></td></tr></tfoot>\n</table>\n<h3>Run</h3>\n"
                "<table class=\"props\">\n<tr><td>replcheck</td><td>" REPLCHECK_VERSION
                "</td></tr>\n<tr><td>strict</td><td>");
  report_io_put(w, report->strict ? "yes (SHOULD requirements fail the run)"
                                  : "no (unmet SHOULD requirements are warnings)");
  report_io_put(w, "</td></tr>\n");
  for (size_t i = 0; i < report->property_count; i++) {
    report_io_put(w, "<tr><td>");
    put_text(w, report->properties[i].name);
    report_io_put(w, "</td><td>");
    put_text(w, report->properties[i].value);
    report_io_put(w, "</td></tr>\n");
  }
  report_io_put(w, "</table>\n</section>\n");
}

/* ---- by area ---------------------------------------------------------------------- */

typedef struct area_row {
  char *name; /* NULL: cases without area or id */
  size_t counts[VERDICT_COUNT];
  size_t total, failing;
} area_row_t;

static int same_area(const char *a, const char *b) {
  return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Areas in order of first appearance (the registry's order), with their counts.
 * Returns 0, or -1 on allocation failure. */
static int collect_areas(const report_t *report, area_row_t **rows_out, size_t *count_out) {
  area_row_t *rows = calloc(report->case_count > 0 ? report->case_count : 1, sizeof *rows);
  size_t count = 0;
  if (rows == NULL) return -1;
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    char *area = report_io_case_area(c);
    if (area == NULL && !(report_io_is_blank(c->area) && report_io_is_blank(c->id))) {
      for (size_t k = 0; k < count; k++) free(rows[k].name);
      free(rows);
      return -1;
    }
    size_t k = 0;
    while (k < count && !same_area(rows[k].name, area)) k++;
    if (k == count)
      rows[count++].name = area;
    else
      free(area);
    rows[k].counts[report_io_verdict(c)]++;
    rows[k].total++;
    rows[k].failing += (size_t)report_io_case_fails(c, report->strict);
  }
  *rows_out = rows;
  *count_out = count;
  return 0;
}

static void put_areas(report_io_writer_t *w, const report_t *report, const summary_t *s,
                      const area_row_t *rows, size_t count) {
  report_io_put(w,
                "<section id=\"by-area\">\n<h2>By area</h2>\n<table class=\"areas\">\n"
                "<thead><tr><th>Area</th><th class=\"n\">Tests</th>");
  for (int v = 0; v < VERDICT_COUNT; v++)
    put_all(w, "<th class=\"n\">", verdict_label((verdict_t)v), "</th>", NULL);
  report_io_put(w, "<th>Result</th></tr></thead>\n<tbody>\n");
  for (size_t k = 0; k < count; k++) {
    report_io_put(w, "<tr><td>");
    put_text(w, rows[k].name != NULL ? rows[k].name : "(no area)");
    report_io_put(w, "</td><td class=\"n\">");
    report_io_put_size(w, rows[k].total);
    report_io_put(w, "</td>");
    for (int v = 0; v < VERDICT_COUNT; v++) put_count_cell(w, rows[k].counts[v], (verdict_t)v);
    if (rows[k].failing > 0)
      report_io_put(w, "<td><span class=\"badge failed\">FAILED</span></td></tr>\n");
    else if (rows[k].counts[VERDICT_SKIP] == rows[k].total)
      report_io_put(w, "<td><span class=\"badge none\">SKIPPED</span></td></tr>\n");
    else
      report_io_put(w, "<td><span class=\"badge passed\">PASSED</span></td></tr>\n");
  }
  report_io_put(w, "</tbody>\n<tfoot><tr><td>All areas</td><td class=\"n\">");
  report_io_put_size(w, report->case_count);
  report_io_put(w, "</td>");
  for (int v = 0; v < VERDICT_COUNT; v++) put_count_cell(w, s->counts[v], (verdict_t)v);
  report_io_put(w, "<td></td></tr></tfoot>\n</table>\n</section>\n");
}

/* ---- cases -------------------------------------------------------------------------- */

/* Why a verdict that is not a plain FAIL is shown where it is. */
static const char *case_note(const report_case_t *c, int strict) {
  switch (report_io_verdict(c)) {
    case VERDICT_NON_STRICT:
      return strict ? "A SHOULD requirement was not met; this run is --strict, so it fails."
                    : "A SHOULD requirement was not met; counted as passed because the run is "
                      "not --strict.";
    case VERDICT_XPASS:
      return strict ? "Listed as expected to fail, but passed; this run is --strict, so it "
                      "fails. Remove it from the expected failures."
                    : "Listed as expected to fail, but passed: remove it from the expected "
                      "failures.";
    case VERDICT_XFAIL:
      return "Failed as expected (listed as an expected failure); does not fail the run.";
    case VERDICT_ERROR:
      return (unsigned)c->verdict >= VERDICT_COUNT
                 ? "The harness recorded an invalid verdict for this test (a harness bug)."
                 : "The harness could not run this test to a verdict (set-up problem, SUT "
                   "not ready, crash or timeout); the requirement was not checked.";
    default:
      return NULL;
  }
}

static void put_field(report_io_writer_t *w, const char *label, const char *value) {
  if (value == NULL) return;
  put_all(w, "<dt>", label, "</dt><dd>", NULL);
  put_text(w, value);
  report_io_put(w, "</dd>\n");
}

static void put_requirement(report_io_writer_t *w, const report_case_t *c) {
  if (c->requirements == NULL && c->requirement == NULL) return;
  report_io_put(w, "<dt>Requirement</dt><dd>");
  const char *cursor = c->requirements;
  size_t len;
  for (const char *id; (id = report_io_next_requirement(&cursor, &len)) != NULL;) {
    char *copy = strndup(id, len);
    report_io_put(w, "<span class=\"req\">");
    put_text(w, copy != NULL ? copy : "?");
    report_io_put(w, "</span> ");
    free(copy);
  }
  put_text(w, c->requirement);
  report_io_put(w, "</dd>\n");
}

/* The requirement, where it comes from and what was expected and seen, then the
 * evidence and the SUT's output, each only when the report holds it. */
static void put_details(report_io_writer_t *w, const report_case_t *c) {
  int any = c->requirements != NULL || c->requirement != NULL || c->source != NULL ||
            c->file != NULL || c->expected != NULL || c->actual != NULL;
  if (any) report_io_put(w, "<dl>\n");
  put_requirement(w, c);
  put_field(w, "Source", c->source);
  if (c->file != NULL) {
    report_io_put(w, "<dt>Location</dt><dd><code>");
    put_text(w, c->file);
    if (c->line > 0) {
      report_io_put(w, ":");
      report_io_put_size(w, (size_t)c->line);
    }
    report_io_put(w, "</code></dd>\n");
  }
  put_field(w, "Expected", c->expected);
  put_field(w, "Actual", c->actual);
  if (any) report_io_put(w, "</dl>\n");
  if (c->evidence != NULL) {
    report_io_put(w, "<h4>Evidence (ledger excerpt, log lines)</h4>\n<pre class=\"evidence\">");
    put_text(w, c->evidence);
    report_io_put(w, "</pre>\n");
  }
  if (c->output != NULL) {
    report_io_put(w, "<h4>SUT output</h4>\n<pre class=\"output\">");
    put_text(w, c->output);
    report_io_put(w, "</pre>\n");
  }
}

static void put_case_heading(report_io_writer_t *w, const report_case_t *c, size_t index) {
  put_verdict(w, report_io_verdict(c));
  report_io_put(w, " ");
  put_case_name(w, c, index);
  report_io_put(w, " <span class=\"time\">");
  report_io_put_seconds(w, c->seconds);
  report_io_put(w, " s</span>");
}

static void put_case(report_io_writer_t *w, const report_case_t *c, size_t index, int strict) {
  report_io_put(w, "<article class=\"case ");
  report_io_put(w, verdict_class(report_io_verdict(c)));
  report_io_put(w, "\" id=\"");
  put_anchor(w, index);
  report_io_put(w, "\">\n<h3>");
  put_case_heading(w, c, index);
  report_io_put(w, "</h3>\n");
  if (c->message != NULL) {
    report_io_put(w, "<p class=\"message\">");
    put_text(w, c->message);
    report_io_put(w, "</p>\n");
  }
  const char *note = case_note(c, strict);
  if (note != NULL) put_all(w, "<p class=\"note\">", note, "</p>\n", NULL);
  put_details(w, c);
  report_io_put(w, "</article>\n");
}

/* One section of expanded cases: those for which want(case) holds. */
static void put_case_section(report_io_writer_t *w, const report_t *report, const char *anchor,
                             const char *title, int (*want)(const report_case_t *, int)) {
  size_t n = 0;
  for (size_t i = 0; i < report->case_count; i++)
    n += (size_t)want(&report->cases[i], report->strict);
  if (n == 0) return;
  put_all(w, "<section id=\"", anchor, "\">\n<h2>", title, " (", NULL);
  report_io_put_size(w, n);
  report_io_put(w, ")</h2>\n");
  for (size_t i = 0; i < report->case_count; i++)
    if (want(&report->cases[i], report->strict)) put_case(w, &report->cases[i], i, report->strict);
  report_io_put(w, "</section>\n");
}

static int is_failing(const report_case_t *c, int strict) {
  return report_io_case_fails(c, strict);
}

static int is_warning(const report_case_t *c, int strict) {
  verdict_t v = report_io_verdict(c);
  return !strict && (v == VERDICT_NON_STRICT || v == VERDICT_XPASS);
}

/* Expected failures stay folded: known, but their details one click away. */
static void put_expected_failures(report_io_writer_t *w, const report_t *report, size_t n) {
  if (n == 0) return;
  report_io_put(w, "<section id=\"expected-failures\">\n<h2>Expected failures (");
  report_io_put_size(w, n);
  report_io_put(w, ")</h2>\n");
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    if (report_io_verdict(c) != VERDICT_XFAIL) continue;
    report_io_put(w, "<details id=\"");
    put_anchor(w, i);
    report_io_put(w, "\"><summary>");
    put_case_heading(w, c, i);
    if (c->message != NULL) {
      report_io_put(w, " &mdash; ");
      put_text(w, c->message);
    }
    report_io_put(w, "</summary>\n");
    put_details(w, c);
    report_io_put(w, "</details>\n");
  }
  report_io_put(w, "</section>\n");
}

static void put_skipped(report_io_writer_t *w, const report_t *report, size_t n) {
  if (n == 0) return;
  report_io_put(w, "<section id=\"skipped\">\n<h2>Skipped (");
  report_io_put_size(w, n);
  report_io_put(w,
                ")</h2>\n<table class=\"skipped\">\n<thead><tr><th>Test</th><th>Reason</th>"
                "</tr></thead>\n<tbody>\n");
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    if (report_io_verdict(c) != VERDICT_SKIP) continue;
    report_io_put(w, "<tr><td>");
    put_case_name(w, c, i);
    report_io_put(w, "</td><td>");
    put_text(w, c->message != NULL ? c->message : "(no reason recorded)");
    report_io_put(w, "</td></tr>\n");
  }
  report_io_put(w, "</tbody>\n</table>\n</section>\n");
}

static void put_passed(report_io_writer_t *w, const report_t *report, size_t n) {
  if (n == 0) return;
  report_io_put(w, "<section id=\"passed\">\n<h2>Passed (");
  report_io_put_size(w, n);
  report_io_put(w, ")</h2>\n<ul class=\"passed\">\n");
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    if (report_io_verdict(c) != VERDICT_PASS) continue;
    report_io_put(w, "<li>");
    put_case_name(w, c, i);
    report_io_put(w, " <span class=\"time\">");
    report_io_put_seconds(w, c->seconds);
    report_io_put(w, " s</span></li>\n");
  }
  report_io_put(w, "</ul>\n</section>\n");
}

/* ---- the document ----------------------------------------------------------------- */

int html_report_write_stream(const report_t *report, FILE *out) {
  if (report == NULL || out == NULL) {
    errno = EINVAL;
    return -1;
  }
  area_row_t *areas = NULL;
  size_t area_count = 0;
  if (collect_areas(report, &areas, &area_count) != 0) {
    errno = ENOMEM;
    return -1;
  }
  summary_t s = summarise(report);
  report_io_writer_t w;
  report_io_writer_init(&w, out);
  report_io_put(&w,
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                "'none'; style-src 'unsafe-inline'\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                "<meta name=\"generator\" content=\"replcheck " REPLCHECK_VERSION
                "\">\n"
                "<title>");
  put_text(&w, report_io_is_blank(report->name) ? "replcheck" : report->name);
  const char *cls;
  put_all(&w, ": ", run_outcome(report, &s, &cls), NULL);
  put_all(&w, "</title>\n<style>\n", stylesheet, "</style>\n</head>\n<body>\n", NULL);
  put_header(&w, report, &s);
  put_nav(&w, &s);
  put_summary(&w, report, &s);
  put_areas(&w, report, &s, areas, area_count);
  put_case_section(&w, report, "failures", "Failures and errors", is_failing);
  put_case_section(&w, report, "warnings", "Warnings", is_warning);
  put_expected_failures(&w, report, s.counts[VERDICT_XFAIL]);
  put_skipped(&w, report, s.counts[VERDICT_SKIP]);
  put_passed(&w, report, s.counts[VERDICT_PASS]);
  report_io_put(&w, "<footer>Written by replcheck " REPLCHECK_VERSION
                    ". Highlighted "
                    "<span class=\"ctl\">\\x1b</span> marks a control or invisible formatting "
                    "character and <span class=\"bad\">\\xff</span> a byte that is not valid "
                    "UTF-8, each shown by its value.</footer>\n</body>\n</html>\n");
  for (size_t k = 0; k < area_count; k++) free(areas[k].name);
  free(areas);
  return report_io_writer_finish(&w);
}

int html_report_write_file(const report_t *report, const char *path, rc_error_t *err) {
  return report_io_write_file(report, path, "html report", html_report_write_stream, err);
}

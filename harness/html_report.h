/* html_report: a self-contained HTML report of a run, for a person in a browser.
 *
 * One file, no network access (inline CSS, no scripts from elsewhere, no fonts or
 * images fetched): a summary (verdict counts, profile properties, duration), results by
 * area, and for every failure/error its requirement, source, expected/actual, the
 * evidence (ledger excerpt, log lines) and the SUT output; skipped tests with reasons.
 * All text is HTML-escaped; invalid UTF-8 and control characters are made visible, never
 * passed through. Written to "<path>.tmp.<pid>" and renamed into place. */
#ifndef HTML_REPORT_H
#define HTML_REPORT_H

#include <stdio.h>

#include "rc_error.h"
#include "report.h"

int html_report_write_stream(const report_t *report, FILE *out);
/* Atomic write; -1 with err naming the path and the system error. */
int html_report_write_file(const report_t *report, const char *path, rc_error_t *err);

#endif

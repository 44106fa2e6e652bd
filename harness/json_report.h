/* json_report: a JSON summary of a run for tools (schema in docs/REPORTS.md,
 * "format": 1). Carries the run properties, counts per verdict, and every case with
 * its id, area, requirements, verdict, time, message, expected/actual, evidence, file
 * and line. Numbers are locale-independent; text is valid UTF-8 (invalid bytes
 * replaced). Written to "<path>.tmp.<pid>" and renamed into place. */
#ifndef JSON_REPORT_H
#define JSON_REPORT_H

#include <stdio.h>

#include "rc_error.h"
#include "report.h"

int json_report_write_stream(const report_t *report, FILE *out);
/* Atomic write; -1 with err naming the path and the system error. */
int json_report_write_file(const report_t *report, const char *path, rc_error_t *err);

#endif

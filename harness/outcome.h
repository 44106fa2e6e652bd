/* outcome: carries one test's result from the forked test process to the runner.
 *
 * The test process writes the filled report_case_t fields (verdict, seconds, message,
 * expected, actual, evidence, output) and whether the SUT failed to start as a small
 * JSON file; the runner reads it back after Check reports the process finished. A
 * missing or unreadable file means the test process died before writing it. */
#ifndef OUTCOME_H
#define OUTCOME_H

#include <stdbool.h>

#include "rc_error.h"
#include "report.h"

/* Writes atomically (temp file + rename). Returns 0 or -1 with err. */
int outcome_write(const char *path, const report_case_t *c, bool sut_start_failed,
                  rc_error_t *err);

/* Reads into c (only the fields above are set; existing strings are replaced).
 * Returns 0 or -1 with err naming the file and what is wrong. */
int outcome_read(const char *path, report_case_t *c, bool *sut_start_failed, rc_error_t *err);

/* Frees the strings of a case that no report owns and zeroes it. */
void outcome_clear_case(report_case_t *c);

#endif

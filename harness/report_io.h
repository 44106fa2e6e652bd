/* report_io: what the report writers (junit.h, html_report.h, json_report.h) share, so
 * that each rule exists once: how a case's verdict, name and area are derived when the
 * model holds something odd, how bytes are decoded as UTF-8, how seconds are printed
 * without the locale, how a stream write error is kept, and how a file is replaced
 * atomically. No state of its own; single-threaded like report.h. */
#ifndef REPORT_IO_H
#define REPORT_IO_H

#include <stddef.h>
#include <stdio.h>

#include "rc_error.h"
#include "report.h"

/* ---- the model as writers show it ------------------------------------------- */

/* The verdict a writer shows: an out-of-range value (a harness bug) becomes
 * VERDICT_ERROR, so it is never mistaken for a pass. */
verdict_t report_io_verdict(const report_case_t *c);
/* 1 when the case makes the run fail: FAIL and ERROR, and under strict also
 * NON_STRICT and XPASS (the same rule the JUnit mapping uses). */
int report_io_case_fails(const report_case_t *c, int strict);
/* 1 when s is NULL or only spaces, tabs and line breaks. */
int report_io_is_blank(const char *s);
/* The case's id, or "unnamed-<index+1>" written into buf for a blank one. */
const char *report_io_case_name(const report_case_t *c, size_t index, char *buf, size_t size);
/* The case's area, or the first '/'-separated segment of its id when the area is
 * blank, as a malloc'd string the caller frees; NULL when both are blank or on
 * allocation failure. */
char *report_io_case_area(const report_case_t *c);

/* Iterates over the ids of a comma-separated requirements list ("HS-01, HS-02"):
 * returns the start of the next id and stores its length, with blanks around it
 * trimmed and empty entries skipped, or returns NULL at the end. *cursor starts at the
 * list (NULL is an empty list) and is advanced past the id. */
const char *report_io_next_requirement(const char **cursor, size_t *len);

/* ---- text ---------------------------------------------------------------------- */

/* Decodes one UTF-8 character from s (n > 0 bytes available). Returns the number of
 * bytes consumed and stores the code point, or stores -1 for an ill-formed sequence and
 * returns the length of its maximal subpart (Unicode ch. 3), so overlong forms,
 * surrogates, stray continuation bytes and truncated sequences each count once per
 * maximal subpart. */
size_t report_io_utf8_decode(const unsigned char *s, size_t n, long *cp);
/* A malloc'd copy of text in which every ill-formed subpart is U+FFFD; everything
 * else, control characters included, is kept. NULL on allocation failure or NULL text. */
char *report_io_utf8_sanitize(const char *text);
/* Seconds with '.' and three decimals ("12.034"), through integer milliseconds so the
 * locale never shows; NaN and negative become 0, absurd values are clamped. */
void report_io_format_seconds(double seconds, char *buf, size_t size);
/* seconds rounded to milliseconds with the same clamping, as a double. */
double report_io_round_seconds(double seconds);

/* ---- stream output ---------------------------------------------------------- */

/* A stream whose first write error sticks (later writes are skipped), with its errno
 * kept for the caller. Writers build a document with many small puts and check once. */
typedef struct report_io_writer {
  FILE *out;
  int failed;
  int saved_errno;
} report_io_writer_t;

void report_io_writer_init(report_io_writer_t *w, FILE *out);
void report_io_put_bytes(report_io_writer_t *w, const char *s, size_t n);
void report_io_put(report_io_writer_t *w, const char *s);
/* Integers go through %zu, which the locale does not touch. */
void report_io_put_size(report_io_writer_t *w, size_t n);
void report_io_put_seconds(report_io_writer_t *w, double seconds);
/* Flushes; returns 0, or -1 with errno set to the first error seen. */
int report_io_writer_finish(report_io_writer_t *w);

/* ---- files ---------------------------------------------------------------------- */

typedef int (*report_io_stream_fn)(const report_t *report, FILE *out);

/* Writes report with write_stream to "<path>.tmp.<pid>", fsyncs it and renames it
 * onto path (then fsyncs the directory), so a reader never sees a partial file; on any
 * failure the temporary file is removed and an existing file at path is untouched.
 * Returns 0, or -1 with err saying "<path>: <system error>" ("<writer>: no output path
 * given" for an empty path). Creating parent directories is the caller's job. */
int report_io_write_file(const report_t *report, const char *path, const char *writer,
                         report_io_stream_fn write_stream, rc_error_t *err);

#endif

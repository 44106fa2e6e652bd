/* sutlog: the SUT's log as observation channel L (requirements.md §0): each line parsed
 * per the profile's log format into logger, level, logcontext and message.
 *
 *   synapse-text  "<time> - <logger> - <lineno> - <LEVEL> - <context> - <message>"
 *                 (also the pre-v0.27 "<context>- <message>" ending, seed-behaviours
 *                 §1.1); a line that does not have this shape (a traceback line) is a
 *                 continuation of the record before it;
 *   json-lines    one JSON object per line: "level", "namespace" (logger), "log"
 *                 (message) and the profile's context field (default "request").
 *
 * The log is untrusted and may be huge: scans read complete lines from an offset, at
 * most a given number of bytes per call, and never keep more than one line in memory.
 * Stateless; thread-safe. */
#ifndef SUTLOG_H
#define SUTLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "profile.h"

typedef struct sutlog_record {
  const char *line;    /* the whole line, without its LF */
  bool is_record;      /* false: a continuation line (e.g. a traceback) */
  const char *logger;  /* the fields below are "" for continuation lines */
  const char *level;   /* "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL" */
  const char *context; /* the logcontext ("request") field; "" for an empty one */
  const char *message;
  long offset; /* byte offset of the line in the file */
  /* Continuation lines: why the line is not a record of the profile's format, for
   * error messages ("no ' - ' after the level", "JSON: '[' is not an object", ...);
   * "" for records. A traceback line is a continuation too, so this is not an error by
   * itself: a log with no record at all means the profile names the wrong format. */
  const char *why_not;
} sutlog_record_t;

/* Called for each line; return true to stop the scan there. */
typedef bool (*sutlog_visit_fn)(const sutlog_record_t *record, void *arg);

/* Parses one line (len bytes, no LF) with the profile's format and calls fn with it.
 * Returns fn's result. */
bool sutlog_parse_line(const profile_t *profile, const char *line, size_t len, long offset,
                       sutlog_visit_fn fn, void *arg);

/* Visits the complete lines of path from *offset on, at most max_bytes of them,
 * advancing *offset past each visited line (a partial last line is left for the next
 * call). Returns true if fn stopped the scan (the offset is then past that line);
 * false at the end, on the byte bound, or when the file cannot be read. */
bool sutlog_scan(const profile_t *profile, const char *path, long *offset, size_t max_bytes,
                 sutlog_visit_fn fn, void *arg);

/* Whether a context field names the sentinel logcontext (empty or "sentinel", F-15). */
bool sutlog_is_sentinel(const char *context);

/* The wall-clock time of a record in milliseconds since the epoch: synapse-text's
 * "YYYY-MM-DD HH:MM:SS,mmm" prefix (local time, as Python's logging writes it), or a
 * json-lines record's numeric "time" (seconds). Returns false when the record has none
 * that parses. */
bool sutlog_record_time_ms(const profile_t *profile, const sutlog_record_t *record,
                           long long *ms);

#endif

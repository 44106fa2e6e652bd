/* wlog: refworker's log file, in Synapse's default text format
 *
 *   2026-11-29 00:24:32,516 - <logger> - <lineno> - <LEVEL> - <context> - <message>
 *
 * and the current "logcontext" name printed in the <context> slot. The harness parses
 * these lines (level, logger, context) exactly as it parses a real Synapse worker's log,
 * so the format must not drift.
 *
 * Process-wide and single-threaded by design, like Python's logging module: one log per
 * process, used only from the thread that runs the event loop. The context is
 * "sentinel" unless a callback sets a named one; every callback that sets one resets it
 * before returning (wlog_context_reset). Each record is written with a single write(2)
 * on an O_APPEND descriptor, so it is on disk (in the page cache) when the call returns.
 * A record is one line, except that wlog_write_detail appends a traceback's lines. */
#ifndef WLOG_H
#define WLOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "rc_error.h"

typedef enum wlog_level {
  WLOG_LEVEL_DEBUG = 10,
  WLOG_LEVEL_INFO = 20,
  WLOG_LEVEL_WARNING = 30,
  WLOG_LEVEL_ERROR = 40,
  WLOG_LEVEL_CRITICAL = 50,
} wlog_level_t;

/* How records are written: Synapse's default text format; the same as written by log
 * configs generated before v0.27 ("<context>- <message>", seed-behaviours.md §1.1); or
 * one JSON object per line with Synapse's JSON formatter's keys ("log", "namespace",
 * "level", "time", "request"; a traceback goes into "log" after a newline). */
typedef enum wlog_format {
  WLOG_FORMAT_TEXT = 0,
  WLOG_FORMAT_TEXT_PRE_V027,
  WLOG_FORMAT_JSON,
} wlog_format_t;

/* "synapse-text", "synapse-text-pre-v0.27", "json-lines" -> *format; -1 for others. */
int wlog_format_from_name(const char *name, wlog_format_t *format);
/* Applies to the records written from now on (default WLOG_FORMAT_TEXT). */
void wlog_set_format(wlog_format_t format);

/* Opens (creating, appending) the log file. Returns 0, or -1 with err filled. Until it is
 * called, and after wlog_close, log calls write nothing. */
int wlog_open(const char *path, rc_error_t *err);
/* Closes the file and frees the context counters. Safe to call when not open. */
void wlog_close(void);

/* Writes one line. `logger` is the Python-style logger name
 * (e.g. "synapse.replication.tcp.protocol"), `lineno` the caller's __LINE__. The message
 * must not contain a newline; one that does is written with the newline escaped, so a
 * log line is always one line. */
void wlog_write(const char *logger, int lineno, wlog_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void wlog_vwrite(const char *logger, int lineno, wlog_level_t level, const char *fmt, va_list ap);
/* Like wlog_write, then `detail` on the lines after the message, as Python's
 * logger.exception() appends a traceback: the record is one write(2), its first line has
 * the usual prefix and the detail lines are written as given (CRs escaped). An empty
 * message is allowed (Twisted's second "Unhandled error" event has one). */
void wlog_write_detail(const char *logger, int lineno, wlog_level_t level, const char *detail,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sets the context to exactly `name` (e.g. "replication-conn-PIHLt"). */
void wlog_context_enter(const char *name);
/* Sets the context to "<base>-<n>", n being how many times this base was entered before
 * (per-base counter starting at 0, as Synapse numbers its background processes). */
void wlog_context_enter_counted(const char *base);
/* Back to "sentinel". */
void wlog_context_reset(void);

/* Logcontext rules (seed-behaviours.md §2, seed I): the loop runs in the sentinel, so
 * every event-loop callback starts in it and leaves it so.
 *
 * wlog_callback_begin is the first call of every callback: finding another context
 * means an earlier callback leaked it; that is logged with the era's mismatch warning
 * (§1.2: "Expected logging context sentinel but found <ctx>" from v1.0, "Unexpected
 * logging context: <ctx> is not sentinel" before, logger synapse.logging.context /
 * synapse.util.logcontext) and the sentinel is restored.
 * wlog_context_restore puts back a context saved before a nested one was entered (as
 * a Deferred's completion restores its caller's); wlog_callback_end is the last call
 * of a callback that entered a context: back to the sentinel.
 * With the leak set (refworker --bug logcontext-leak) restores and callback ends do
 * nothing and callbacks begin in whatever was left: the context leaks on. */
void wlog_set_era(int major, int minor);
void wlog_set_leak(bool leak);
void wlog_callback_begin(void);
void wlog_callback_end(void);
void wlog_context_restore(const char *name);
/* The current context name. */
const char *wlog_context_current(void);

/* Writes s[0..len) quoted the way Python's repr() quotes a str ('text', or "text" when it
 * holds a ' and no "), escaping the quote, backslashes and control bytes, so text from
 * the wire logs exactly as Synapse's %r would show it. Truncates to fit cap (the closing
 * quote is kept); returns buf. */
char *wlog_repr(const char *s, size_t len, char *buf, size_t cap);

/* Shorthands for a .c file that defines WLOG_LOGGER (its logger name) before use, so
 * every line carries the right logger and the caller's line number. */
#define WLOG_DEBUG(...) wlog_write(WLOG_LOGGER, __LINE__, WLOG_LEVEL_DEBUG, __VA_ARGS__)
#define WLOG_INFO(...) wlog_write(WLOG_LOGGER, __LINE__, WLOG_LEVEL_INFO, __VA_ARGS__)
#define WLOG_WARNING(...) wlog_write(WLOG_LOGGER, __LINE__, WLOG_LEVEL_WARNING, __VA_ARGS__)
#define WLOG_ERROR(...) wlog_write(WLOG_LOGGER, __LINE__, WLOG_LEVEL_ERROR, __VA_ARGS__)

#endif

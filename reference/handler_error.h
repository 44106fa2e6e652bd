/* handler_error: an "exception" raised while handling a replication command.
 *
 * refworker reproduces how Synapse reports a failing handler: a log record whose first
 * line is the message and whose following lines are a Python-style traceback. A
 * handler_error_t carries what that needs: the exception's class name, its message and
 * where it was raised. Plain value type, caller-owned (usually on the stack). */
#ifndef HANDLER_ERROR_H
#define HANDLER_ERROR_H

#include <stddef.h>

#include "rc_error.h"

typedef struct handler_error {
  char type[48]; /* Python-style class name, e.g. "TypeError" */
  char message[RC_ERROR_MAX];
  const char *file;     /* where it was raised: a static string (__FILE__) */
  const char *function; /* __func__ */
  int line;
} handler_error_t;

/* Fills *error (which may be NULL) and returns -1, so a handler can write
 * `return HANDLER_RAISE(error, "TypeError", "...", ...);`. */
int handler_error_raise(handler_error_t *error, const char *file, int line, const char *function,
                        const char *type, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define HANDLER_RAISE(error, type, ...) \
  handler_error_raise((error), __FILE__, __LINE__, __func__, (type), __VA_ARGS__)

/* Writes the traceback lines (no trailing newline) into buf, truncating to cap:
 *   Traceback (most recent call last):
 *     File "stream_rows.c", line 42, in stream_rows_check
 *   TypeError: <message>
 * Returns buf. */
char *handler_error_traceback(const handler_error_t *error, char *buf, size_t cap);

#endif

/* rc_error: the one error-reporting shape used across replcheck.
 *
 * Library functions never exit or abort on bad input: they return a status and,
 * when given a non-NULL rc_error_t, fill it with one line saying where and what
 * ("profiles/x.json: field 'timing.ping_ms' must be a positive integer").
 * The struct is caller-owned (usually on the stack); nothing to free. */
#ifndef RC_ERROR_H
#define RC_ERROR_H

#include <stddef.h>

#define RC_ERROR_MAX 1024

typedef struct rc_error {
  char msg[RC_ERROR_MAX];
} rc_error_t;

/* Formats into err->msg (truncating safely). err may be NULL. Returns -1 so
 * callers can write `return rc_error_set(err, ...);`. */
int rc_error_set(rc_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the existing message with "<prefix>: ". err may be NULL. Returns -1. */
int rc_error_prefix(rc_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

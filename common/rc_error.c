#include "rc_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rc_error_set(rc_error_t *err, const char *fmt, ...) {
  if (err == NULL) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return -1;
}

int rc_error_prefix(rc_error_t *err, const char *fmt, ...) {
  if (err == NULL) return -1;
  char prefix[RC_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  char old[RC_ERROR_MAX];
  memcpy(old, err->msg, sizeof old);
  /* Truncation is acceptable for a message; say so explicitly to the compiler. */
  size_t at = strnlen(prefix, sizeof err->msg - 1);
  memcpy(err->msg, prefix, at);
  if (at + 2 < sizeof err->msg) {
    memcpy(err->msg + at, ": ", 2);
    at += 2;
  }
  size_t rest = strnlen(old, sizeof old);
  if (rest > sizeof err->msg - 1 - at) rest = sizeof err->msg - 1 - at;
  memcpy(err->msg + at, old, rest);
  err->msg[at + rest] = '\0';
  return -1;
}

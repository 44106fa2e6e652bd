#include "handler_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int handler_error_raise(handler_error_t *error, const char *file, int line, const char *function,
                        const char *type, const char *fmt, ...) {
  if (error == NULL) return -1;
  snprintf(error->type, sizeof error->type, "%s", type);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error->message, sizeof error->message, fmt, ap);
  va_end(ap);
  /* The source file's base name: __FILE__ carries the build's absolute path. */
  const char *slash = file != NULL ? strrchr(file, '/') : NULL;
  error->file = slash != NULL ? slash + 1 : file;
  error->function = function;
  error->line = line;
  return -1;
}

char *handler_error_traceback(const handler_error_t *error, char *buf, size_t cap) {
  if (cap == 0) return buf;
  /* The message may hold a newline (a row quoted from the wire is escaped by repr, but
   * be safe): a traceback's last line is one line. */
  char message[RC_ERROR_MAX];
  size_t o = 0;
  for (const char *p = error->message; *p != '\0' && o + 3 < sizeof message; p++) {
    if (*p == '\n' || *p == '\r') {
      message[o++] = '\\';
      message[o++] = *p == '\n' ? 'n' : 'r';
    } else {
      message[o++] = *p;
    }
  }
  message[o] = '\0';
  snprintf(buf, cap,
           "Traceback (most recent call last):\n"
           "  File \"%s\", line %d, in %s\n"
           "%s: %s",
           error->file != NULL ? error->file : "<unknown>", error->line,
           error->function != NULL ? error->function : "<unknown>",
           error->type[0] != '\0' ? error->type : "Exception", message);
  return buf;
}

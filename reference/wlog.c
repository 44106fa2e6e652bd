#include "wlog.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WLOG_CONTEXT_MAX 256
#define WLOG_SENTINEL "sentinel"

typedef struct wlog_counter {
  char *base;
  unsigned long next;
} wlog_counter_t;

/* One log per process (see wlog.h): module state, not passed around. */
static int wlog_fd = -1;
static char wlog_context[WLOG_CONTEXT_MAX] = WLOG_SENTINEL;
static wlog_counter_t *wlog_counters;
static size_t wlog_counter_count;
static size_t wlog_counter_cap;
static int wlog_era = 166; /* major * 100 + minor: which warning texts (wlog_set_era) */
static bool wlog_leak;
static wlog_format_t wlog_format = WLOG_FORMAT_TEXT;

int wlog_open(const char *path, rc_error_t *err) {
  if (wlog_fd >= 0) return rc_error_set(err, "log %s: a log file is already open", path);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return rc_error_set(err, "log %s: cannot open: %s", path, strerror(errno));
  /* Timestamps are local time, as Python's logging prints them. */
  tzset();
  wlog_fd = fd;
  return 0;
}

void wlog_close(void) {
  if (wlog_fd >= 0) close(wlog_fd);
  wlog_fd = -1;
  for (size_t i = 0; i < wlog_counter_count; i++) free(wlog_counters[i].base);
  free(wlog_counters);
  wlog_counters = NULL;
  wlog_counter_count = wlog_counter_cap = 0;
  wlog_context_reset();
}

static const char *wlog_level_name(wlog_level_t level) {
  switch (level) {
    case WLOG_LEVEL_DEBUG:
      return "DEBUG";
    case WLOG_LEVEL_INFO:
      return "INFO";
    case WLOG_LEVEL_WARNING:
      return "WARNING";
    case WLOG_LEVEL_ERROR:
      return "ERROR";
    case WLOG_LEVEL_CRITICAL:
      return "CRITICAL";
  }
  return "ERROR";
}

static void wlog_write_all(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(wlog_fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return; /* nowhere left to report a failing log */
    }
    buf += n;
    len -= (size_t)n;
  }
}

/* Copies msg into out, escaping CR and LF so one call is one line. Returns the length. */
static size_t wlog_escape_into(char *out, const char *msg, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (msg[i] == '\n' || msg[i] == '\r') {
      out[o++] = '\\';
      out[o++] = msg[i] == '\n' ? 'n' : 'r';
    } else {
      out[o++] = msg[i];
    }
  }
  return o;
}

/* Copies detail into out after a newline, escaping CR only (its LFs separate the
 * traceback's lines). Returns the length written. */
static size_t wlog_detail_into(char *out, const char *detail, size_t len) {
  size_t o = 0;
  out[o++] = '\n';
  for (size_t i = 0; i < len; i++) {
    if (detail[i] == '\r') {
      out[o++] = '\\';
      out[o++] = 'r';
    } else {
      out[o++] = detail[i];
    }
  }
  return o;
}

/* One JSON record on one line (jansson escapes newlines in strings). The sentinel's
 * "request" is null in Synapse's JSON output: an empty context field either way. */
static void wlog_emit_json(const char *logger, wlog_level_t level, const char *detail,
                           const char *msg, size_t len, const struct timespec *ts) {
  json_t *text = json_stringn(msg, len);
  if (text != NULL && detail != NULL && detail[0] != '\0') {
    char *joined = NULL;
    if (asprintf(&joined, "%.*s\n%s", (int)len, msg, detail) >= 0) {
      json_decref(text);
      text = json_string(joined);
      free(joined);
    }
  }
  if (text == NULL) text = json_string("(not UTF-8)"); /* jansson refuses invalid UTF-8 */
  json_t *record = json_object();
  if (record == NULL) {
    json_decref(text);
    return;
  }
  json_object_set_new(record, "log", text);
  json_object_set_new(record, "namespace", json_string(logger));
  json_object_set_new(record, "level", json_string(wlog_level_name(level)));
  json_object_set_new(record, "time",
                      json_real((double)ts->tv_sec + (double)(ts->tv_nsec / 1000000L) / 1000.0));
  json_object_set_new(record, "request", strcmp(wlog_context, WLOG_SENTINEL) == 0
                                             ? json_null()
                                             : json_string(wlog_context));
  char *line = json_dumps(record, JSON_COMPACT);
  json_decref(record);
  if (line == NULL) return;
  size_t n = strlen(line);
  line[n] = '\n'; /* overwrites the NUL: written by length below */
  wlog_write_all(line, n + 1);
  free(line);
}

static void wlog_emit(const char *logger, int lineno, wlog_level_t level, const char *detail,
                      const char *fmt, va_list ap) {
  if (wlog_fd < 0) return;

  char msg_stack[2048];
  char *msg = msg_stack;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(msg_stack, sizeof msg_stack, fmt, ap);
  if (n < 0) {
    va_end(ap2);
    return;
  }
  if ((size_t)n >= sizeof msg_stack) {
    msg = malloc((size_t)n + 1);
    if (msg == NULL) {
      /* Keep the truncated text rather than nothing. */
      msg = msg_stack;
      n = (int)sizeof msg_stack - 1;
    } else {
      vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    }
  }
  va_end(ap2);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (wlog_format == WLOG_FORMAT_JSON) {
    wlog_emit_json(logger, level, detail, msg, (size_t)n, &ts);
    if (msg != msg_stack) free(msg);
    return;
  }
  struct tm tm;
  localtime_r(&ts.tv_sec, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);

  char prefix[WLOG_CONTEXT_MAX + 256];
  /* Before v0.27 the context ended "<context>- "; "%(request)s - " since. */
  int plen = snprintf(prefix, sizeof prefix, "%s,%03ld - %s - %d - %s - %s%s ", stamp,
                      (long)(ts.tv_nsec / 1000000L), logger, lineno, wlog_level_name(level),
                      wlog_context, wlog_format == WLOG_FORMAT_TEXT_PRE_V027 ? "-" : " -");
  if (plen < 0) plen = 0;
  if ((size_t)plen >= sizeof prefix) plen = (int)sizeof prefix - 1;

  /* Worst case every message and detail byte doubles when escaped, plus two newlines. */
  size_t detail_len = detail != NULL ? strlen(detail) : 0;
  size_t cap = (size_t)plen + 2 * (size_t)n + 2 * detail_len + 2;
  char line_stack[4096 + WLOG_CONTEXT_MAX + 256];
  char *line = cap <= sizeof line_stack ? line_stack : malloc(cap);
  if (line != NULL) {
    memcpy(line, prefix, (size_t)plen);
    size_t len = (size_t)plen + wlog_escape_into(line + plen, msg, (size_t)n);
    if (detail_len > 0) len += wlog_detail_into(line + len, detail, detail_len);
    line[len++] = '\n';
    wlog_write_all(line, len);
    if (line != line_stack) free(line);
  }
  if (msg != msg_stack) free(msg);
}

void wlog_vwrite(const char *logger, int lineno, wlog_level_t level, const char *fmt, va_list ap) {
  wlog_emit(logger, lineno, level, NULL, fmt, ap);
}

void wlog_write_detail(const char *logger, int lineno, wlog_level_t level, const char *detail,
                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  wlog_emit(logger, lineno, level, detail, fmt, ap);
  va_end(ap);
}

void wlog_write(const char *logger, int lineno, wlog_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  wlog_vwrite(logger, lineno, level, fmt, ap);
  va_end(ap);
}

void wlog_context_enter(const char *name) {
  snprintf(wlog_context, sizeof wlog_context, "%s", name);
}

void wlog_context_enter_counted(const char *base) {
  wlog_counter_t *counter = NULL;
  for (size_t i = 0; i < wlog_counter_count; i++) {
    if (strcmp(wlog_counters[i].base, base) == 0) {
      counter = &wlog_counters[i];
      break;
    }
  }
  if (counter == NULL && wlog_counter_count == wlog_counter_cap) {
    size_t cap = wlog_counter_cap == 0 ? 16 : wlog_counter_cap * 2;
    wlog_counter_t *grown = realloc(wlog_counters, cap * sizeof *grown);
    if (grown != NULL) {
      wlog_counters = grown;
      wlog_counter_cap = cap;
    }
  }
  if (counter == NULL && wlog_counter_count < wlog_counter_cap) {
    char *copy = strdup(base);
    if (copy != NULL) {
      counter = &wlog_counters[wlog_counter_count++];
      counter->base = copy;
      counter->next = 0;
    }
  }
  if (counter == NULL) {
    /* Out of memory: a context without its number is still the right context. */
    wlog_context_enter(base);
    return;
  }
  snprintf(wlog_context, sizeof wlog_context, "%s-%lu", base, counter->next++);
}

void wlog_context_reset(void) {
  wlog_context_enter(WLOG_SENTINEL);
}

int wlog_format_from_name(const char *name, wlog_format_t *format) {
  static const struct {
    const char *name;
    wlog_format_t format;
  } NAMES[] = {{"synapse-text", WLOG_FORMAT_TEXT},
               {"synapse-text-pre-v0.27", WLOG_FORMAT_TEXT_PRE_V027},
               {"json-lines", WLOG_FORMAT_JSON}};
  for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
    if (strcmp(NAMES[i].name, name) == 0) {
      *format = NAMES[i].format;
      return 0;
    }
  }
  return -1;
}

void wlog_set_format(wlog_format_t format) {
  wlog_format = format;
}

void wlog_set_era(int major, int minor) {
  wlog_era = major * 100 + minor;
}

void wlog_set_leak(bool leak) {
  wlog_leak = leak;
}

void wlog_callback_begin(void) {
  if (strcmp(wlog_context, WLOG_SENTINEL) == 0) return;
  /* The warning is logged in the context found, as Synapse's is. */
  if (wlog_era >= 100) {
    wlog_write("synapse.logging.context", __LINE__, WLOG_LEVEL_WARNING,
               "Expected logging context %s but found %s", WLOG_SENTINEL, wlog_context);
  } else {
    wlog_write("synapse.util.logcontext", __LINE__, WLOG_LEVEL_WARNING,
               "Unexpected logging context: %s is not %s", wlog_context, WLOG_SENTINEL);
  }
  if (!wlog_leak) wlog_context_reset();
}

void wlog_callback_end(void) {
  if (!wlog_leak) wlog_context_reset();
}

void wlog_context_restore(const char *name) {
  if (!wlog_leak) wlog_context_enter(name);
}

const char *wlog_context_current(void) {
  return wlog_context;
}

char *wlog_repr(const char *s, size_t len, char *buf, size_t cap) {
  if (cap == 0) return buf;
  if (cap < 3) {
    buf[0] = '\0';
    return buf;
  }
  bool has_single = memchr(s, '\'', len) != NULL;
  bool has_double = memchr(s, '"', len) != NULL;
  char quote = (has_single && !has_double) ? '"' : '\'';
  size_t o = 0;
  buf[o++] = quote;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[5];
    size_t n;
    if (c == '\\' || c == (unsigned char)quote) {
      esc[0] = '\\';
      esc[1] = (char)c;
      n = 2;
    } else if (c == '\n' || c == '\r' || c == '\t') {
      esc[0] = '\\';
      esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
      n = 2;
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof esc, "\\x%02x", c);
      n = 4;
    } else {
      esc[0] = (char)c;
      n = 1;
    }
    if (o + n + 2 > cap) break; /* room for the closing quote and NUL */
    memcpy(buf + o, esc, n);
    o += n;
  }
  buf[o++] = quote;
  buf[o] = '\0';
  return buf;
}

#include "report_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the model as writers show it ------------------------------------------- */

verdict_t report_io_verdict(const report_case_t *c) {
  if ((unsigned)c->verdict >= VERDICT_COUNT) return VERDICT_ERROR;
  return c->verdict;
}

int report_io_case_fails(const report_case_t *c, int strict) {
  switch (report_io_verdict(c)) {
    case VERDICT_FAIL:
    case VERDICT_ERROR:
      return 1;
    case VERDICT_NON_STRICT:
    case VERDICT_XPASS:
      return strict != 0;
    default:
      return 0;
  }
}

static int is_blank_char(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

int report_io_is_blank(const char *s) {
  if (s == NULL) return 1;
  for (; *s != '\0'; s++)
    if (!is_blank_char(*s)) return 0;
  return 1;
}

const char *report_io_case_name(const report_case_t *c, size_t index, char *buf, size_t size) {
  if (!report_io_is_blank(c->id)) return c->id;
  snprintf(buf, size, "unnamed-%zu", index + 1);
  return buf;
}

char *report_io_case_area(const report_case_t *c) {
  if (!report_io_is_blank(c->area)) return strdup(c->area);
  if (report_io_is_blank(c->id)) return NULL;
  return strndup(c->id, strcspn(c->id, "/"));
}

const char *report_io_next_requirement(const char **cursor, size_t *len) {
  const char *p = *cursor;
  if (p == NULL) return NULL;
  while (*p != '\0') {
    size_t n = strcspn(p, ",");
    const char *start = p, *end = p + n;
    p = *end == ',' ? end + 1 : end;
    while (start < end && is_blank_char(*start)) start++;
    while (end > start && is_blank_char(end[-1])) end--;
    if (end > start) {
      *cursor = p;
      *len = (size_t)(end - start);
      return start;
    }
  }
  *cursor = p;
  return NULL;
}

/* ---- text ---------------------------------------------------------------------- */

size_t report_io_utf8_decode(const unsigned char *s, size_t n, long *cp) {
  unsigned char b = s[0];
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t need;
  long value;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
    value = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    value = b & 0x0F;
    if (b == 0xE0) lo = 0xA0; /* overlong */
    if (b == 0xED) hi = 0x9F; /* surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    value = b & 0x07;
    if (b == 0xF0) lo = 0x90; /* overlong */
    if (b == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    *cp = -1;
    return 1;
  }
  for (size_t i = 1; i <= need; i++) {
    if (i >= n || s[i] < lo || s[i] > hi) {
      *cp = -1;
      return i;
    }
    value = (value << 6) | (s[i] & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  *cp = value;
  return need + 1;
}

char *report_io_utf8_sanitize(const char *text) {
  if (text == NULL) return NULL;
  const unsigned char *s = (const unsigned char *)text;
  size_t n = strlen(text);
  /* A one-byte subpart grows to three bytes of U+FFFD at worst. */
  if (n > ((size_t)-1 - 1) / 3) return NULL;
  char *out = malloc(3 * n + 1);
  if (out == NULL) return NULL;
  size_t used = 0;
  for (size_t i = 0; i < n;) {
    long cp;
    size_t len = report_io_utf8_decode(s + i, n - i, &cp);
    if (cp < 0) {
      memcpy(out + used, "\xEF\xBF\xBD", 3);
      used += 3;
    } else {
      memcpy(out + used, s + i, len);
      used += len;
    }
    i += len;
  }
  out[used] = '\0';
  return out;
}

/* Milliseconds, with NaN and negative as 0 and a clamp that keeps the conversion to
 * an integer defined. */
static long long seconds_to_ms(double seconds) {
  if (!(seconds > 0)) return 0;
  if (seconds > 1e12) seconds = 1e12;
  return (long long)(seconds * 1000.0 + 0.5);
}

void report_io_format_seconds(double seconds, char *buf, size_t size) {
  long long ms = seconds_to_ms(seconds);
  snprintf(buf, size, "%lld.%03lld", ms / 1000, ms % 1000);
}

double report_io_round_seconds(double seconds) {
  return (double)seconds_to_ms(seconds) / 1000.0;
}

/* ---- stream output ---------------------------------------------------------- */

void report_io_writer_init(report_io_writer_t *w, FILE *out) {
  w->out = out;
  w->failed = 0;
  w->saved_errno = 0;
}

void report_io_put_bytes(report_io_writer_t *w, const char *s, size_t n) {
  if (w->failed || n == 0) return;
  errno = 0;
  if (fwrite(s, 1, n, w->out) != n) {
    w->failed = 1;
    w->saved_errno = errno != 0 ? errno : EIO;
  }
}

void report_io_put(report_io_writer_t *w, const char *s) {
  report_io_put_bytes(w, s, strlen(s));
}

void report_io_put_size(report_io_writer_t *w, size_t n) {
  char buf[32];
  snprintf(buf, sizeof buf, "%zu", n);
  report_io_put(w, buf);
}

void report_io_put_seconds(report_io_writer_t *w, double seconds) {
  char buf[48];
  report_io_format_seconds(seconds, buf, sizeof buf);
  report_io_put(w, buf);
}

int report_io_writer_finish(report_io_writer_t *w) {
  if (!w->failed && fflush(w->out) != 0) {
    w->failed = 1;
    w->saved_errno = errno != 0 ? errno : EIO;
  }
  if (!w->failed && ferror(w->out)) {
    w->failed = 1;
    w->saved_errno = EIO;
  }
  if (w->failed) {
    errno = w->saved_errno;
    return -1;
  }
  return 0;
}

/* ---- files ---------------------------------------------------------------------- */

/* Makes the rename itself durable; a failure here cannot undo a complete report, so
 * it is not reported. */
static void sync_parent_directory(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t dir_len = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
  char *dir = slash == NULL ? strdup(".") : strndup(path, dir_len);
  if (dir == NULL) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

int report_io_write_file(const report_t *report, const char *path, const char *writer,
                         report_io_stream_fn write_stream, rc_error_t *err) {
  if (path == NULL || path[0] == '\0')
    return rc_error_set(err, "%s: no output path given", writer != NULL ? writer : "report");
  if (report == NULL) return rc_error_set(err, "%s: no report to write", path);
  size_t tmp_size = strlen(path) + 32;
  char *tmp = malloc(tmp_size);
  if (tmp == NULL) return rc_error_set(err, "%s: %s", path, strerror(ENOMEM));
  snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());

  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return rc_error_set(err, "%s: %s", path, strerror(e));
  }
  FILE *out = fdopen(fd, "w");
  if (out == NULL) {
    int e = errno;
    close(fd);
    unlink(tmp);
    free(tmp);
    return rc_error_set(err, "%s: %s", path, strerror(e));
  }
  int e = 0;
  if (write_stream(report, out) != 0) e = errno != 0 ? errno : EIO;
  if (e == 0 && fsync(fd) != 0) e = errno;
  if (fclose(out) != 0 && e == 0) e = errno;
  if (e == 0 && rename(tmp, path) != 0) e = errno;
  if (e != 0) {
    unlink(tmp);
    free(tmp);
    return rc_error_set(err, "%s: %s", path, strerror(e));
  }
  free(tmp);
  sync_parent_directory(path);
  return 0;
}

#include "filetail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TAIL_WINDOW (64 * 1024)

char *filetail_read_all(const char *path, size_t max_bytes, rc_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    rc_error_set(err, "%s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || (size_t)st.st_size > max_bytes) {
    rc_error_set(err, "%s: larger than %zu bytes", path, max_bytes);
    fclose(f);
    return NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t got = buf != NULL ? fread(buf, 1, (size_t)st.st_size, f) : 0;
  fclose(f);
  if (buf == NULL) {
    rc_error_set(err, "%s: out of memory", path);
    return NULL;
  }
  buf[got] = '\0';
  return buf;
}

/* Appends bytes with control characters (other than LF and TAB) escaped. */
static size_t escape_copy(char *dst, const char *src, size_t len) {
  size_t at = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)src[i];
    if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f)) {
      dst[at++] = (char)c;
    } else {
      at += (size_t)sprintf(dst + at, "\\x%02x", c);
    }
  }
  return at;
}

char *filetail_last_lines(const char *path, size_t lines) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return strdup("");
  char *window = malloc(TAIL_WINDOW);
  if (window == NULL) {
    fclose(f);
    return strdup("");
  }
  struct stat st;
  long size = fstat(fileno(f), &st) == 0 ? (long)st.st_size : 0;
  long from = size > TAIL_WINDOW ? size - TAIL_WINDOW : 0;
  fseek(f, from, SEEK_SET);
  size_t got = fread(window, 1, TAIL_WINDOW, f);
  fclose(f);
  /* Walk back over `lines` line breaks (a trailing LF does not start a line). */
  size_t end = got;
  if (end > 0 && window[end - 1] == '\n') end--;
  size_t start = end, seen = 0;
  while (start > 0) {
    if (window[start - 1] == '\n' && ++seen == lines) break;
    start--;
  }
  char *out = malloc((end - start) * 4 + 2);
  if (out == NULL) {
    free(window);
    return strdup("");
  }
  size_t n = escape_copy(out, window + start, end - start);
  if (n > 0) out[n++] = '\n';
  out[n] = '\0';
  free(window);
  return out;
}

#define SCAN_CHUNK (64 * 1024)

bool filetail_scan_regex(const char *path, long *offset, const regex_t *re, char *match,
                         size_t match_cap) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return false;
  char *line = malloc(TAIL_WINDOW + 1);
  char *chunk = malloc(SCAN_CHUNK);
  if (line == NULL || chunk == NULL || fseek(f, *offset, SEEK_SET) != 0) {
    free(line);
    free(chunk);
    fclose(f);
    return false;
  }
  /* Only the current line is kept, and only its first TAIL_WINDOW bytes: a SUT that
   * writes a gigabyte without a LF costs this scan time, never memory. */
  long chunk_start = *offset;
  size_t used = 0;
  bool too_long = false, found = false;
  size_t got;
  while (!found && (got = fread(chunk, 1, SCAN_CHUNK, f)) > 0) {
    size_t at = 0;
    while (at < got) {
      const char *lf = memchr(chunk + at, '\n', got - at);
      size_t piece = (lf != NULL ? (size_t)(lf - chunk) : got) - at;
      if (!too_long && used + piece > TAIL_WINDOW) too_long = true;
      if (!too_long) {
        memcpy(line + used, chunk + at, piece);
        used += piece;
      }
      at += piece;
      if (lf == NULL) break; /* partial: wait for the rest */
      at++;
      *offset = chunk_start + (long)at;
      if (!too_long) {
        line[used] = '\0';
        if (regexec(re, line, 0, NULL, 0) == 0) {
          found = true;
          if (match != NULL && match_cap > 0) snprintf(match, match_cap, "%s", line);
          break;
        }
      }
      used = 0;
      too_long = false;
    }
    chunk_start += (long)got;
  }
  free(line);
  free(chunk);
  fclose(f);
  return found;
}

long filetail_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

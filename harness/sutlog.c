/* sutlog: parsing the SUT's log lines (see sutlog.h). */
#include "sutlog.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lines longer than this are visited, cut to this length, as continuations without
 * being split into fields (nobody writes a 64 KiB log record; a binary blob in the log
 * must not cost more). */
#define SUTLOG_MAX_PARSED_LINE (64 * 1024)

static const char *const LEVELS[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", NULL};

static bool is_level(const char *s) {
  for (size_t i = 0; LEVELS[i] != NULL; i++)
    if (strcmp(LEVELS[i], s) == 0) return true;
  return false;
}

/* Cuts `s` at the next " - " (writing a NUL there) and returns what follows, or NULL. */
static char *cut_dash(char *s) {
  char *sep = strstr(s, " - ");
  if (sep == NULL) return NULL;
  *sep = '\0';
  return sep + 3;
}

/* "<time> - <logger> - <lineno> - <LEVEL> - <context> - <message>" in buf (modified). */
static bool parse_text(char *buf, sutlog_record_t *r) {
  char *time = buf;
  char *logger = cut_dash(time);
  char *lineno = logger ? cut_dash(logger) : NULL;
  char *level = lineno ? cut_dash(lineno) : NULL;
  char *context = level ? cut_dash(level) : NULL;
  if (context == NULL || !isdigit((unsigned char)time[0]) || lineno[0] == '\0' || !is_level(level))
    return false;
  for (const char *c = lineno; *c != '\0'; c++)
    if (!isdigit((unsigned char)*c)) return false;
  char *message = NULL;
  /* An empty context leaves " -  - " behind the level: the context is then "". */
  if (strncmp(context, " - ", 3) == 0) {
    *context = '\0';
    message = context + 3;
  } else {
    message = cut_dash(context);
    if (message == NULL) {
      /* pre-v0.27 formats: "<context>- <message>" */
      char *old = strstr(context, "- ");
      if (old == NULL) return false;
      *old = '\0';
      message = old + 2;
    }
  }
  r->logger = logger;
  r->level = level;
  r->context = context;
  r->message = message;
  return true;
}

static bool visit_json(const profile_t *profile, const char *line, size_t len, sutlog_record_t *r,
                       sutlog_visit_fn fn, void *arg) {
  json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
  if (obj == NULL || !json_is_object(obj)) {
    json_decref(obj);
    return fn(r, arg);
  }
  const char *level = json_string_value(json_object_get(obj, "level"));
  const char *message = json_string_value(json_object_get(obj, "log"));
  if (level != NULL && message != NULL) {
    const char *logger = json_string_value(json_object_get(obj, "namespace"));
    const char *context = json_string_value(json_object_get(obj, profile->log_context_field));
    r->is_record = true;
    r->level = level;
    r->message = message;
    r->logger = logger ? logger : "";
    r->context = context ? context : "";
  }
  bool stop = fn(r, arg);
  json_decref(obj); /* the strings above belong to obj */
  return stop;
}

bool sutlog_parse_line(const profile_t *profile, const char *line, size_t len, long offset,
                       sutlog_visit_fn fn, void *arg) {
  char *copy = strndup(line, len); /* stops at a NUL: such a line is no record anyway */
  if (copy == NULL) return false;
  sutlog_record_t r = {
      .line = copy, .logger = "", .level = "", .context = "", .message = "", .offset = offset};
  bool stop;
  if (len > SUTLOG_MAX_PARSED_LINE || memchr(line, '\0', len) != NULL) {
    stop = fn(&r, arg);
  } else if (profile->log_format == PROFILE_LOG_JSON_LINES) {
    stop = visit_json(profile, line, len, &r, fn, arg);
  } else {
    char *fields = strdup(copy);
    if (fields != NULL && parse_text(fields, &r)) r.is_record = true;
    stop = fn(&r, arg);
    free(fields);
  }
  free(copy);
  return stop;
}

bool sutlog_scan(const profile_t *profile, const char *path, long *offset, size_t max_bytes,
                 sutlog_visit_fn fn, void *arg) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return false;
  char *line = malloc(SUTLOG_MAX_PARSED_LINE + 1);
  if (line == NULL || fseek(f, *offset, SEEK_SET) != 0) {
    free(line);
    fclose(f);
    return false;
  }
  size_t read_bytes = 0;
  bool stopped = false;
  while (!stopped && read_bytes < max_bytes) {
    /* One line, keeping at most SUTLOG_MAX_PARSED_LINE bytes of it. */
    size_t len = 0, total = 0;
    int c;
    while ((c = getc_unlocked(f)) != EOF && c != '\n') {
      if (len < SUTLOG_MAX_PARSED_LINE) line[len++] = (char)c;
      total++;
    }
    if (c == EOF) break; /* partial (or no) line: the SUT may still be writing it */
    long at = *offset;
    *offset += (long)total + 1;
    read_bytes += total + 1;
    if (total > SUTLOG_MAX_PARSED_LINE) {
      line[len] = '\0';
      sutlog_record_t cut = {
          .line = line, .logger = "", .level = "", .context = "", .message = "", .offset = at};
      stopped = fn(&cut, arg);
      continue;
    }
    if (len > 0 && line[len - 1] == '\r') len--;
    stopped = sutlog_parse_line(profile, line, len, at, fn, arg);
  }
  free(line);
  fclose(f);
  return stopped;
}

bool sutlog_is_sentinel(const char *context) {
  return context == NULL || context[0] == '\0' || strcmp(context, "sentinel") == 0;
}

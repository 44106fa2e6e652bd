/* sutlog: parsing the SUT's log lines (see sutlog.h). */
#include "sutlog.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Splits "<context> - <message>" (v0.27+) or "<context>- <message>" (earlier configs,
 * seed-behaviours.md §1.1) at `rest`. Context names never hold a space (request ids,
 * "<desc>-<n>", sentinel, None), so the first space decides which form this is; that
 * keeps a message's own " - " out of the context either way. */
static bool split_context(char *rest, char **context, char **message) {
  if (strncmp(rest, " - ", 3) == 0) { /* v0.27+ with the sentinel's empty field */
    *rest = '\0';
    *context = rest;
    *message = rest + 3;
    return true;
  }
  char *space = strchr(rest, ' ');
  if (space == NULL) return false;
  if (strncmp(space, " - ", 3) == 0) { /* v0.27+: "<context> - <message>" */
    *space = '\0';
    *context = rest;
    *message = space + 3;
    return true;
  }
  if (space > rest && space[-1] == '-') { /* pre-v0.27: "<context>- <message>" */
    space[-1] = '\0';
    *context = rest;
    *message = space + 1;
    return true;
  }
  /* A context with a space in it (a custom request string): the first " - " ends it. */
  char *after = cut_dash(rest);
  if (after == NULL) return false;
  *context = rest;
  *message = after;
  return true;
}

/* "<time> - <logger> - <lineno> - <LEVEL> - <context> - <message>" in buf (modified).
 * Returns NULL for a record, else why the line is not one. */
static const char *parse_text(char *buf, sutlog_record_t *r) {
  char *time = buf;
  char *logger = cut_dash(time);
  char *lineno = logger ? cut_dash(logger) : NULL;
  char *level = lineno ? cut_dash(lineno) : NULL;
  char *rest = level ? cut_dash(level) : NULL;
  if (rest == NULL) return "fewer than five ' - ' separated fields before the message";
  if (!isdigit((unsigned char)time[0])) return "the time field does not start with a digit";
  if (lineno[0] == '\0') return "the line number field is empty";
  for (const char *c = lineno; *c != '\0'; c++)
    if (!isdigit((unsigned char)*c)) return "the line number field is not a number";
  if (!is_level(level)) return "the level field is not DEBUG, INFO, WARNING, ERROR or CRITICAL";
  char *context = NULL, *message = NULL;
  if (!split_context(rest, &context, &message))
    return "no '<context> - ' (or pre-v0.27 '<context>- ') before the message";
  r->logger = logger;
  r->level = level;
  r->context = context;
  r->message = message;
  return NULL;
}

static bool visit_json(const profile_t *profile, const char *line, size_t len, sutlog_record_t *r,
                       sutlog_visit_fn fn, void *arg) {
  json_error_t jerr;
  json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
  char why[256];
  if (obj == NULL || !json_is_object(obj)) {
    if (obj == NULL)
      snprintf(why, sizeof why, "not JSON: %s at column %d", jerr.text, jerr.column);
    else
      snprintf(why, sizeof why, "JSON but not an object");
    r->why_not = why;
    json_decref(obj);
    return fn(r, arg);
  }
  const char *level = json_string_value(json_object_get(obj, "level"));
  const char *message = json_string_value(json_object_get(obj, "log"));
  if (level != NULL && message != NULL) {
    const char *logger = json_string_value(json_object_get(obj, "namespace"));
    const char *context = json_string_value(json_object_get(obj, profile->log_context_field));
    r->is_record = true;
    r->why_not = "";
    r->level = level;
    r->message = message;
    r->logger = logger ? logger : "";
    r->context = context ? context : "";
  } else {
    r->why_not = level == NULL ? "a JSON object without a string \"level\""
                               : "a JSON object without a string \"log\" (the message)";
  }
  bool stop = fn(r, arg);
  json_decref(obj); /* the strings above belong to obj */
  return stop;
}

/* A continuation line (no fields) saying why it is not a record. */
static sutlog_record_t continuation(const char *line, long offset, const char *why_not) {
  return (sutlog_record_t){.line = line,
                           .logger = "",
                           .level = "",
                           .context = "",
                           .message = "",
                           .offset = offset,
                           .why_not = why_not};
}

bool sutlog_parse_line(const profile_t *profile, const char *line, size_t len, long offset,
                       sutlog_visit_fn fn, void *arg) {
  char *copy = strndup(line, len); /* stops at a NUL: such a line is no record anyway */
  if (copy == NULL) return false;
  sutlog_record_t r = continuation(copy, offset, "an empty line");
  bool stop;
  if (len > SUTLOG_MAX_PARSED_LINE) {
    r.why_not = "longer than 64 KiB";
    stop = fn(&r, arg);
  } else if (memchr(line, '\0', len) != NULL) {
    r.why_not = "holds a NUL byte";
    stop = fn(&r, arg);
  } else if (len == 0) {
    stop = fn(&r, arg);
  } else if (profile->log_format == PROFILE_LOG_JSON_LINES) {
    stop = visit_json(profile, line, len, &r, fn, arg);
  } else {
    char *fields = strdup(copy);
    const char *why = fields != NULL ? parse_text(fields, &r) : "out of memory";
    if (why == NULL) {
      r.is_record = true;
      r.why_not = "";
    } else {
      r.why_not = why;
    }
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
      sutlog_record_t cut = continuation(line, at, "longer than 64 KiB");
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

bool sutlog_record_time_ms(const profile_t *profile, const sutlog_record_t *record,
                           long long *ms) {
  if (!record->is_record) return false;
  if (profile->log_format == PROFILE_LOG_JSON_LINES) {
    json_t *obj = json_loads(record->line, 0, NULL);
    json_t *time = obj != NULL ? json_object_get(obj, "time") : NULL;
    bool ok = time != NULL && json_is_number(time);
    if (ok) *ms = (long long)(json_number_value(time) * 1000.0);
    json_decref(obj);
    return ok;
  }
  struct tm tm = {0};
  int millis = 0, used = 0;
  if (sscanf(record->line, "%4d-%2d-%2d %2d:%2d:%2d,%3d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
             &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &used) != 7 ||
      used != 23)
    return false;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1; /* local time, daylight saving as the SUT's clock saw it */
  time_t seconds = mktime(&tm);
  if (seconds == (time_t)-1) return false;
  *ms = (long long)seconds * 1000 + millis;
  return true;
}

/* Parsing fixture files (fixture.h; the format is docs/FIXTURES.md): the file, its lines
 * and its header, a list of "name: value" fields up to the line "script:"; every line
 * after it is one step (fixture_steps.c). Each problem is reported once, with file, line
 * and field or step. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_parser.h"

#define FIXTURE_MAX_STREAMS 64

/* ---- small helpers -------------------------------------------------------------------- */

static int field_error(parser_t *p, const char *field, const char *fmt, const char *value) {
  char why[512];
  snprintf(why, sizeof why, fmt, value);
  return rc_error_set(p->err, "%s:%d: field '%s': %s", p->path, p->line, field, why);
}

int fixture_parser_step_error(parser_t *p, const char *step, const char *why) {
  return rc_error_set(p->err, "%s:%d: step '%.40s': %s", p->path, p->line, step, why);
}

bool fixture_parser_int64(const char *text, int64_t min, int64_t max, int64_t *out) {
  if (text == NULL || *text == '\0') return false;
  const char *digits = *text == '-' ? text + 1 : text;
  if (*digits == '\0' || strlen(digits) > 19) return false;
  for (const char *c = digits; *c; c++)
    if (*c < '0' || *c > '9') return false;
  errno = 0;
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

bool fixture_parser_ms(const char *text, int min, int *out) {
  int64_t v;
  if (!fixture_parser_int64(text, min, FIXTURE_MAX_MS, &v)) return false;
  *out = (int)v;
  return true;
}

/* Splits "a, b,c" into items; calls check on each; joins them as "a,b,c" in *out. */
static int parse_list(parser_t *p, const char *field, const char *value,
                      bool (*check)(const char *item), const char *what, char **out) {
  char *copy = strdup(value);
  size_t cap = strlen(value) + 1;
  char *joined = calloc(1, cap);
  if (copy == NULL || joined == NULL) {
    free(copy);
    free(joined);
    return rc_error_set(p->err, "out of memory");
  }
  int rc = 0;
  char *save = NULL;
  for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
    while (*item == ' ' || *item == '\t') item++;
    size_t n = strlen(item);
    while (n > 0 && (item[n - 1] == ' ' || item[n - 1] == '\t')) item[--n] = '\0';
    if (n == 0 || !check(item)) {
      char why[300];
      snprintf(why, sizeof why, "expected %s, got '%%s'", what);
      rc = field_error(p, field, why, item);
      break;
    }
    if (joined[0] != '\0') strcat(joined, ",");
    strcat(joined, item);
  }
  if (rc == 0 && joined[0] == '\0') rc = field_error(p, field, "expected %s, got nothing", what);
  free(copy);
  if (rc != 0) {
    free(joined);
    return -1;
  }
  *out = joined;
  return 0;
}

static bool is_requirement_id(const char *s) {
  const char *c = s;
  while (*c >= 'A' && *c <= 'Z') c++;
  if (c == s || *c != '-') return false;
  const char *d = ++c;
  while (*c >= '0' && *c <= '9') c++;
  return c > d && *c == '\0';
}

static bool is_name(const char *s, const char *extra) {
  for (const char *c = s; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr(extra, *c) != NULL))
      return false;
  return *s != '\0';
}

static bool is_tag(const char *s) {
  return is_name(s, "-");
}
static bool is_role(const char *s) {
  return is_name(s, "_");
}
/* An absolute URL path without spaces, commas or a query: what http.paths lists. */
static bool is_http_path(const char *s) {
  if (s[0] != '/') return false;
  for (const char *c = s; *c; c++)
    if (*c <= ' ' || *c > '~' || *c == ',' || *c == '?' || *c == '#') return false;
  return true;
}
static bool is_dialect(const char *s) {
  return strcmp(s, "2018") == 0 || strcmp(s, "modern") == 0;
}
static bool is_transport(const char *s) {
  return strcmp(s, "tcp") == 0 || strcmp(s, "redis") == 0;
}

static int set_text(parser_t *p, char **field, const char *value) {
  free(*field);
  *field = strdup(value);
  return *field == NULL ? rc_error_set(p->err, "out of memory") : 0;
}

/* ---- header --------------------------------------------------------------------------- */

enum {
  F_REQUIREMENTS = 1u << 0,
  F_LEVEL = 1u << 1,
  F_REQUIREMENT = 1u << 2,
  F_SOURCE = 1u << 3,
  F_DIALECTS = 1u << 4,
  F_TRANSPORTS = 1u << 5,
  F_ROLES = 1u << 6,
  F_TAGS = 1u << 7,
  F_MOCK = 1u << 8,
  F_PING = 1u << 9,
  F_DEADLINE = 1u << 10,
  F_UNEXPECTED = 1u << 11,
  F_REMOTES = 1u << 12,
  F_NEEDS_PATHS = 1u << 13,
  F_NEEDS_CACHES = 1u << 14,
};

static const struct {
  const char *name;
  unsigned bit; /* 0: repeatable */
} FIELDS[] = {
    {"requirements", F_REQUIREMENTS},
    {"level", F_LEVEL},
    {"requirement", F_REQUIREMENT},
    {"source", F_SOURCE},
    {"dialects", F_DIALECTS},
    {"transports", F_TRANSPORTS},
    {"roles", F_ROLES},
    {"tags", F_TAGS},
    {"mock", F_MOCK},
    {"ping-interval", F_PING},
    {"stream", 0},
    {"ignore", 0},
    {"deadline", F_DEADLINE},
    {"unexpected", F_UNEXPECTED},
    {"remotes", F_REMOTES},
    {"needs-paths", F_NEEDS_PATHS},
    {"needs-caches", F_NEEDS_CACHES},
};

static int add_stream(parser_t *p, const char *value) {
  fixture_t *f = p->f;
  char name[256];
  char position[64];
  char extra;
  if (sscanf(value, "%255s %63s %c", name, position, &extra) != 2)
    return field_error(p, "stream", "expected 'NAME POSITION', got '%s'", value);
  int64_t pos;
  if (!fixture_parser_int64(position, 0, INT64_MAX, &pos))
    return field_error(p, "stream", "expected a position >= 0, got '%s'", position);
  for (size_t i = 0; i < f->stream_count; i++)
    if (strcmp(f->streams[i].name, name) == 0)
      return field_error(p, "stream", "stream '%s' is declared twice", name);
  if (f->stream_count == FIXTURE_MAX_STREAMS)
    return field_error(p, "stream", "at most 64 streams, got more at '%s'", name);
  fixture_stream_t *grown = realloc(f->streams, (f->stream_count + 1) * sizeof *grown);
  if (grown == NULL) return rc_error_set(p->err, "out of memory");
  f->streams = grown;
  f->streams[f->stream_count].name = strdup(name);
  f->streams[f->stream_count].position = pos;
  if (f->streams[f->stream_count].name == NULL) return rc_error_set(p->err, "out of memory");
  f->stream_count++;
  return 0;
}

static bool is_server_name(const char *s) {
  return strlen(s) <= 255 && is_name(s, ".-:");
}

/* "remotes: a.example,b.example": the fake federation remotes the suite starts. */
static int set_remotes(parser_t *p, const char *value) {
  fixture_t *f = p->f;
  char *list = NULL;
  if (parse_list(p, "remotes", value, is_server_name,
                 "server names made of a-z, 0-9, '.', '-' and ':'", &list) != 0)
    return -1;
  int rc = 0;
  char *save = NULL;
  for (char *name = strtok_r(list, ",", &save); name && rc == 0;
       name = strtok_r(NULL, ",", &save)) {
    for (size_t i = 0; i < f->remote_count && rc == 0; i++)
      if (strcmp(f->remotes[i], name) == 0)
        rc = field_error(p, "remotes", "remote '%s' is named twice", name);
    if (rc == 0 && f->remote_count == FIXTURE_MAX_REMOTES)
      rc = field_error(p, "remotes", "at most 8 remotes, got more at '%s'", name);
    char **grown = rc == 0 ? realloc(f->remotes, (f->remote_count + 1) * sizeof *grown) : NULL;
    if (rc == 0 && grown == NULL) rc = rc_error_set(p->err, "out of memory");
    if (rc != 0) break;
    f->remotes = grown;
    if ((f->remotes[f->remote_count] = strdup(name)) == NULL)
      rc = rc_error_set(p->err, "out of memory");
    else
      f->remote_count++;
  }
  free(list);
  if (rc == 0) f->needs |= FIXTURE_NEEDS_REMOTES;
  return rc;
}

static int add_ignore(parser_t *p, const char *value) {
  if (strcmp(value, "none") == 0) {
    p->ignore_none = true;
    return 0;
  }
  rc_error_t why;
  if (fixture_text_check(value, FIXTURE_TEXT_PATTERN, &why) != 0)
    return field_error(p, "ignore", "%.400s", why.msg);
  char **grown = realloc(p->f->ignore, (p->f->ignore_count + 1) * sizeof *grown);
  if (grown == NULL) return rc_error_set(p->err, "out of memory");
  p->f->ignore = grown;
  if ((grown[p->f->ignore_count] = strdup(value)) == NULL)
    return rc_error_set(p->err, "out of memory");
  p->f->ignore_count++;
  return 0;
}

static int header_field(parser_t *p, const char *name, const char *value) {
  fixture_t *f = p->f;
  unsigned bit = 0;
  bool known = false;
  for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++)
    if (strcmp(FIELDS[i].name, name) == 0) known = true, bit = FIELDS[i].bit;
  if (!known)
    return rc_error_set(p->err,
                        "%s:%d: unknown field '%s' (known: replcheck-fixture, requirements, "
                        "level, requirement, source, dialects, transports, roles, tags, mock, "
                        "ping-interval, stream, ignore, deadline, unexpected, remotes, "
                        "needs-paths, needs-caches; the script starts "
                        "after 'script:')",
                        p->path, p->line, name);
  if (bit != 0 && (p->seen & bit)) return field_error(p, name, "given twice%s", "");
  p->seen |= bit;
  if (*value == '\0') return field_error(p, name, "has no value%s", "");
  char *list = NULL;
  int rc = 0;
  switch (bit) {
    case F_REQUIREMENTS:
      return parse_list(p, name, value, is_requirement_id, "requirement ids like 'RD-06'",
                        &f->requirements);
    case F_LEVEL:
      if (strcmp(value, "MUST") == 0)
        f->level = FIXTURE_LEVEL_MUST;
      else if (strcmp(value, "SHOULD") == 0)
        f->level = FIXTURE_LEVEL_SHOULD;
      else
        return field_error(p, name, "expected MUST or SHOULD, got '%s'", value);
      return 0;
    case F_REQUIREMENT:
      return set_text(p, &f->requirement, value);
    case F_SOURCE:
      return set_text(p, &f->source, value);
    case F_DIALECTS:
    case F_TRANSPORTS: {
      bool dialects = bit == F_DIALECTS;
      rc = parse_list(p, name, value, dialects ? is_dialect : is_transport,
                      dialects ? "2018 or modern" : "tcp or redis", &list);
      if (rc != 0) return rc;
      unsigned bits = 0;
      if (dialects) {
        if (strstr(list, "2018")) bits |= FIXTURE_DIALECT_2018;
        if (strstr(list, "modern")) bits |= FIXTURE_DIALECT_MODERN;
        f->dialects = bits;
      } else {
        if (strstr(list, "tcp")) bits |= FIXTURE_TRANSPORT_TCP;
        if (strstr(list, "redis")) bits |= FIXTURE_TRANSPORT_REDIS;
        f->transports = bits;
      }
      free(list);
      return 0;
    }
    case F_ROLES:
      f->roles_line = p->line;
      return parse_list(p, name, value, is_role, "role names like 'fedsender'", &f->roles);
    case F_NEEDS_PATHS:
      return parse_list(p, name, value, is_http_path, "URL paths starting with '/'",
                        &f->needs_paths);
    case F_NEEDS_CACHES:
      return parse_list(p, name, value, is_role, "cache names like 'device_updates'",
                        &f->needs_caches);
    case F_TAGS:
      return parse_list(p, name, value, is_tag, "tags made of a-z, 0-9 and '-'", &f->tags);
    case F_MOCK:
      if (strcmp(value, "main") == 0)
        f->mock = FIXTURE_MOCK_MAIN;
      else if (strcmp(value, "scripted") == 0)
        f->mock = FIXTURE_MOCK_SCRIPTED;
      else
        return field_error(p, name, "expected main or scripted, got '%s'", value);
      return 0;
    case F_PING:
      if (!fixture_parser_ms(value, 0, &f->ping_interval_ms))
        return field_error(p, name, "expected milliseconds in 0..600000, got '%s'", value);
      return 0;
    case F_DEADLINE:
      if (!fixture_parser_ms(value, 1, &f->deadline_ms))
        return field_error(p, name, "expected milliseconds in 1..600000, got '%s'", value);
      p->deadline_ms = f->deadline_ms;
      return 0;
    case F_UNEXPECTED:
      if (strcmp(value, "ignore") == 0)
        f->unexpected_fail = false;
      else if (strcmp(value, "fail") == 0)
        f->unexpected_fail = true;
      else
        return field_error(p, name, "expected ignore or fail, got '%s'", value);
      return 0;
    case F_REMOTES:
      return set_remotes(p, value);
    default:
      return strcmp(name, "stream") == 0 ? add_stream(p, value) : add_ignore(p, value);
  }
}

static int header_line(parser_t *p, const char *line) {
  if (strcmp(line, "script:") == 0) {
    if (!p->seen_version)
      return rc_error_set(p->err, "%s:%d: the first field must be 'replcheck-fixture: 1'", p->path,
                          p->line);
    p->in_script = true;
    return 0;
  }
  const char *colon = strchr(line, ':');
  size_t n = colon ? (size_t)(colon - line) : 0;
  for (size_t i = 0; i < n; i++)
    if (!((line[i] >= 'a' && line[i] <= 'z') || line[i] == '-')) n = 0;
  if (n == 0)
    return rc_error_set(p->err,
                        "%s:%d: expected a header field 'name: value' or 'script:', got "
                        "'%.60s'",
                        p->path, p->line, line);
  char name[64];
  snprintf(name, sizeof name, "%.*s", (int)(n < 63 ? n : 63), line);
  const char *value = colon + 1;
  while (*value == ' ' || *value == '\t') value++;
  if (!p->seen_version) {
    if (strcmp(name, "replcheck-fixture") != 0)
      return rc_error_set(p->err,
                          "%s:%d: the first field must be 'replcheck-fixture: 1', got "
                          "'%s'",
                          p->path, p->line, name);
    p->seen_version = true;
    if (strcmp(value, "1") != 0)
      return field_error(p, "replcheck-fixture",
                         "expected format version 1 (this replcheck reads only that), got '%s'",
                         value);
    return 0;
  }
  if (strcmp(name, "replcheck-fixture") == 0) return field_error(p, name, "given twice%s", "");
  return header_field(p, name, value);
}

/* ---- the file ------------------------------------------------------------------------- */

static bool checks_something(const fixture_step_t *s) {
  switch (s->kind) {
    case FIXTURE_STEP_EXPECT:
    case FIXTURE_STEP_EXPECT_NOT:
    case FIXTURE_STEP_UNORDERED:
    case FIXTURE_STEP_CLOSED:
    case FIXTURE_STEP_OPEN:
    case FIXTURE_STEP_HTTP:
    case FIXTURE_STEP_HTTP_NOT:
    case FIXTURE_STEP_LOG:
    case FIXTURE_STEP_LOG_NOT:
    case FIXTURE_STEP_METRIC:
    case FIXTURE_STEP_METRIC_NOT:
    case FIXTURE_STEP_SUT_HTTP:
    case FIXTURE_STEP_REMOTE:
    case FIXTURE_STEP_REMOTE_NOT:
    case FIXTURE_STEP_REMOTE_COUNT:
    case FIXTURE_STEP_DB:
    case FIXTURE_STEP_DB_NOT:
      return true;
    default:
      return false;
  }
}

static int finish(parser_t *p) {
  fixture_t *f = p->f;
  if (!p->seen_version)
    return rc_error_set(p->err,
                        "%s: empty: the first field must be "
                        "'replcheck-fixture: 1'",
                        p->path);
  static const struct {
    unsigned bit;
    const char *name;
  } required[] = {{F_REQUIREMENTS, "requirements"},
                  {F_REQUIREMENT, "requirement"},
                  {F_SOURCE, "source"},
                  {F_DIALECTS, "dialects"}};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
    if (!(p->seen & required[i].bit))
      return rc_error_set(p->err, "%s: field '%s' is required", p->path, required[i].name);
  if (!p->in_script)
    return rc_error_set(p->err, "%s: no 'script:' line: the steps of a fixture follow it", p->path);
  if (p->group >= 0)
    return rc_error_set(p->err, "%s:%d: the 'unordered' window opened here has no 'end'", p->path,
                        f->steps[p->group].line);
  bool checks = false;
  for (size_t i = 0; i < f->step_count; i++) checks = checks || checks_something(&f->steps[i]);
  if (!checks)
    return rc_error_set(p->err,
                        "%s: the script checks nothing: add an expectation ('<', 'http', "
                        "'closed', ...)",
                        p->path);
  if (!(p->seen & F_TRANSPORTS)) f->transports = FIXTURE_TRANSPORT_TCP;
  if (!p->ignore_none) {
    /* Keepalive is timing-dependent: by default no expectation trips over it. */
    static const char *const defaults[] = {"PING ${any}", "PING"};
    char **grown = realloc(f->ignore, (f->ignore_count + 2) * sizeof *grown);
    if (grown == NULL) return rc_error_set(p->err, "out of memory");
    f->ignore = grown;
    for (size_t i = 0; i < 2; i++)
      if ((f->ignore[f->ignore_count] = strdup(defaults[i])) != NULL) f->ignore_count++;
  }
  f->conn_count = p->known_conns;
  return 0;
}

fixture_t *fixture_parse(const char *text, size_t len, const char *path, rc_error_t *err) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL || (f->path = strdup(path)) == NULL) {
    free(f);
    rc_error_set(err, "out of memory");
    return NULL;
  }
  f->level = FIXTURE_LEVEL_MUST;
  f->mock = FIXTURE_MOCK_MAIN;
  f->ping_interval_ms = -1;
  f->deadline_ms = FIXTURE_DEFAULT_DEADLINE_MS;
  parser_t p = {.path = path,
                .f = f,
                .err = err,
                .deadline_ms = FIXTURE_DEFAULT_DEADLINE_MS,
                .current_conn = 1,
                .group = -1};
  int rc = 0;
  if (len > FIXTURE_MAX_BYTES) rc = rc_error_set(err, "%s: larger than 4 MiB", path);
  char *line = malloc(FIXTURE_MAX_LINE + 1);
  if (line == NULL) rc = rc_error_set(err, "out of memory");
  for (size_t at = 0; rc == 0 && at < len;) {
    const char *nl = memchr(text + at, '\n', len - at);
    size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
    p.line++;
    if (n > FIXTURE_MAX_LINE) {
      rc = rc_error_set(err, "%s:%d: line longer than %d bytes", path, p.line, FIXTURE_MAX_LINE);
      break;
    }
    memcpy(line, text + at, n);
    line[n] = '\0';
    at += n + 1;
    if (memchr(line, '\0', n) != NULL) {
      rc = rc_error_set(err, "%s:%d: a NUL byte (write \\x00 in a >raw step)", path, p.line);
      break;
    }
    if (strchr(line, '\r') != NULL) {
      rc = rc_error_set(err,
                        "%s:%d: a carriage return (fixtures use LF line ends; write \\r in "
                        "a >raw step)",
                        path, p.line);
      break;
    }
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = '\0';
    const char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '\0' || *s == '#') continue;
    rc = p.in_script ? fixture_parser_script_line(&p, s) : header_line(&p, s);
  }
  free(line);
  if (rc == 0) rc = finish(&p);
  if (rc != 0) {
    fixture_destroy(f);
    return NULL;
  }
  return f;
}

fixture_t *fixture_load(const char *path, const char *shown, rc_error_t *err) {
  if (shown == NULL) shown = path;
  FILE *file = fopen(path, "rb");
  if (file == NULL) {
    rc_error_set(err, "%s: %s", shown, strerror(errno));
    return NULL;
  }
  size_t cap = 65536, len = 0;
  char *text = malloc(cap);
  bool too_big = false;
  while (text != NULL) {
    if (len == cap) {
      if (cap > FIXTURE_MAX_BYTES) {
        too_big = true;
        break;
      }
      char *grown = realloc(text, cap * 2);
      if (grown == NULL) {
        free(text);
        text = NULL;
        break;
      }
      text = grown;
      cap *= 2;
    }
    size_t got = fread(text + len, 1, cap - len, file);
    if (got == 0) break;
    len += got;
  }
  bool read_error = ferror(file) != 0;
  fclose(file);
  fixture_t *f = NULL;
  if (text == NULL)
    rc_error_set(err, "%s: out of memory", shown);
  else if (too_big || len > FIXTURE_MAX_BYTES)
    rc_error_set(err, "%s: larger than 4 MiB", shown);
  else if (read_error)
    rc_error_set(err, "%s: read error", shown);
  else
    f = fixture_parse(text, len, shown, err);
  free(text);
  return f;
}

static void step_free(fixture_step_t *s) {
  free(s->source);
  free(s->text);
  free(s->stream);
  free(s->method);
  free(s->header);
  free(s->regex);
  free(s->state);
  for (size_t i = 0; i < s->child_count; i++) step_free(&s->children[i]);
  free(s->children);
}

void fixture_destroy(fixture_t *f) {
  if (f == NULL) return;
  free(f->path);
  free(f->requirements);
  free(f->requirement);
  free(f->source);
  free(f->roles);
  free(f->needs_paths);
  free(f->needs_caches);
  free(f->tags);
  for (size_t i = 0; i < f->stream_count; i++) free(f->streams[i].name);
  free(f->streams);
  for (size_t i = 0; i < f->ignore_count; i++) free(f->ignore[i]);
  free(f->ignore);
  for (size_t i = 0; i < f->remote_count; i++) free(f->remotes[i]);
  free(f->remotes);
  for (size_t i = 0; i < f->step_count; i++) step_free(&f->steps[i]);
  free(f->steps);
  free(f);
}

const char *fixture_dialects_text(unsigned dialects, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s%s", (dialects & FIXTURE_DIALECT_2018) ? "2018" : "",
           (dialects & FIXTURE_DIALECT_2018) && (dialects & FIXTURE_DIALECT_MODERN) ? "," : "",
           (dialects & FIXTURE_DIALECT_MODERN) ? "modern" : "");
  return buf;
}

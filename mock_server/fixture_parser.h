/* fixture_parser: the state shared by the two halves of the fixture parser
 * (fixture_parse.c: the file and its header; fixture_steps.c: the script). Internal to
 * them; everyone else uses fixture.h. */
#ifndef FIXTURE_PARSER_H
#define FIXTURE_PARSER_H

#include <stdbool.h>
#include <stdint.h>

#include "fixture.h"

typedef struct parser {
  const char *path;
  fixture_t *f;
  rc_error_t *err;
  int line;
  bool in_script;
  bool seen_version;
  unsigned seen;    /* header fields given (bit per field) */
  bool ignore_none; /* "ignore: none": no default patterns */
  int deadline_ms;  /* current deadline of new steps */
  int current_conn; /* connection of steps without a cN prefix */
  int known_conns;  /* connections introduced so far */
  long group;       /* index of the open unordered step, -1 if none */
  size_t step_cap;
} parser_t;

/* "<path>:<line>: step '<step>': <why>" into p->err; returns -1. */
int fixture_parser_step_error(parser_t *p, const char *step, const char *why);
/* A whole decimal number in [min, max]. */
bool fixture_parser_int64(const char *text, int64_t min, int64_t max, int64_t *out);
/* Milliseconds in [min, FIXTURE_MAX_MS]. */
bool fixture_parser_ms(const char *text, int min, int *out);
/* Appends a step of this kind at the current line (into the open unordered window, if
 * any), with the current deadline. NULL with p->err when out of memory. */
fixture_step_t *fixture_parser_new_step(parser_t *p, fixture_step_kind_t kind, const char *source);
/* One step line (trimmed, not a comment). Returns 0, or -1 with p->err. */
int fixture_parser_script_line(parser_t *p, const char *line);

#endif

#include "cli_options.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "selection.h"

enum { FOR_RUN = 1u << 0, FOR_LIST = 1u << 1 };

typedef enum option_id {
  OPT_PROFILE = 1,
  OPT_FILTER,
  OPT_JUNIT,
  OPT_HTML,
  OPT_JSON,
  OPT_KEEP_LOGS,
  OPT_BIN_DIR,
  OPT_STRICT,
  OPT_EXPECTED_FAILURES,
  OPT_MIN,
  OPT_JOBS,
  OPT_SHARD,
  OPT_REPEAT,
  OPT_SEED,
  OPT_TIMEOUT_FACTOR,
  OPT_RETRY,
  OPT_PROGRESS,
  OPT_LIST,
  OPT_FORMAT,
  OPT_FIXTURES,
  OPT_RECORD,
  OPT_TORTURE,
} option_id_t;

typedef struct option_row {
  option_id_t id;
  const char *name;         /* --name */
  const char *env;          /* REPLCHECK_<NAME> */
  const char *arg;          /* argument placeholder; NULL for a flag */
  const char *default_text; /* shown in --help and --help-env */
  unsigned commands;        /* FOR_RUN | FOR_LIST */
  const char *help;
} option_row_t;

/* The one table of options: parsing, --help and --help-env all come from here. */
static const option_row_t OPTIONS[] = {
    {OPT_PROFILE, "profile", "REPLCHECK_PROFILE", "FILE", "none", FOR_RUN | FOR_LIST,
     "the SUT profile (JSON, see docs/PROFILES.md); required by run; with list, marks the "
     "tests that do not apply to it"},
    {OPT_FILTER, "filter", "REPLCHECK_FILTER", "SELECTOR", "every test", FOR_RUN | FOR_LIST,
     "select tests (repeatable; same as a positional SELECTOR): id, id prefix, glob, "
     "tag:NAME, or !SELECTOR to exclude"},
    {OPT_JUNIT, "junit", "REPLCHECK_JUNIT", "PATH", "reports/<profile>.junit.xml", FOR_RUN,
     "JUnit XML report"},
    {OPT_HTML, "html", "REPLCHECK_HTML", "PATH", "none", FOR_RUN, "self-contained HTML report"},
    {OPT_JSON, "json", "REPLCHECK_JSON", "PATH", "none", FOR_RUN, "JSON report for tools"},
    {OPT_KEEP_LOGS, "keep-logs", "REPLCHECK_KEEP_LOGS", NULL, "off", FOR_RUN,
     "keep every test's work directory (SUT log and output), not only failed runs'"},
    {OPT_BIN_DIR, "bin-dir", "REPLCHECK_BIN_DIR", "DIR", "replcheck's own directory", FOR_RUN,
     "value of {bin_dir} in profiles"},
    {OPT_STRICT, "strict", "REPLCHECK_STRICT", NULL, "off", FOR_RUN,
     "NON-STRICT results (a SHOULD not met) and XPASS fail the run"},
    {OPT_EXPECTED_FAILURES, "expected-failures", "REPLCHECK_EXPECTED_FAILURES", "FILE", "none",
     FOR_RUN,
     "tests expected to fail: one id or glob per line, then a mandatory reason; a listed "
     "failure is XFAIL, a listed pass XPASS"},
    {OPT_MIN, "min", "REPLCHECK_MIN", "N", "1", FOR_RUN,
     "usage error (exit 2) when fewer than N tests are selected (counted before --shard)"},
    {OPT_JOBS, "jobs", "REPLCHECK_JOBS", "N", "1", FOR_RUN,
     "run N tests at once (1..64), each in its own processes with its own ports"},
    {OPT_SHARD, "shard", "REPLCHECK_SHARD", "K/N", "1/1", FOR_RUN,
     "run only shard K of N: selected test i (registry order, from 0) when i mod N = K-1"},
    {OPT_REPEAT, "repeat", "REPLCHECK_REPEAT", "N", "1", FOR_RUN,
     "run each test N times (1..1000); repetition R >= 2 is reported as '<id>#R'"},
    {OPT_SEED, "seed", "REPLCHECK_SEED", "N", "from the clock", FOR_RUN,
     "seed for tests' random choices (printed and recorded in the reports)"},
    {OPT_TIMEOUT_FACTOR, "timeout-factor", "REPLCHECK_TIMEOUT_FACTOR", "F", "1", FOR_RUN,
     "multiply the startup timeout, shutdown grace and per-test timeout by F (0 < F <= 100) "
     "for slow machines; requirement windows are unchanged"},
    {OPT_RETRY, "retry", "REPLCHECK_RETRY", "N", "0", FOR_RUN,
     "retry a failing test tagged 'retriable' up to N more times (0..100)"},
    {OPT_PROGRESS, "progress", "REPLCHECK_PROGRESS", "MODE", "auto", FOR_RUN,
     "auto (per-test lines, ETA on a terminal), plain (no ETA) or none (no per-test lines)"},
    {OPT_LIST, "list", "REPLCHECK_LIST", NULL, "off", FOR_RUN,
     "print what would run, with skip reasons, and run nothing"},
    {OPT_FORMAT, "format", "REPLCHECK_FORMAT", "FMT", "text", FOR_LIST,
     "text, markdown (the docs/TESTS.md table) or json"},
    {OPT_FIXTURES, "fixtures", "REPLCHECK_FIXTURES", "DIR", "the source tree's fixtures/",
     FOR_RUN | FOR_LIST,
     "every *.fixture file under DIR is a test 'fixtures/<path>' (docs/FIXTURES.md)"},
    {OPT_RECORD, "record", "REPLCHECK_RECORD", "DIR", "none", FOR_RUN,
     "write each test's exchange as a replayable fixture DIR/<id>.fixture"},
    {OPT_TORTURE, "torture", "REPLCHECK_TORTURE", "LEVEL", "0", FOR_RUN,
     "0..3: the mock reorders streams, holds and splits its lines, drops a first connection; "
     "the same --seed gives the same schedule (docs/FIXTURES.md)"},
};
#define OPTION_COUNT (sizeof OPTIONS / sizeof OPTIONS[0])

void cli_config_clear(cli_config_t *c) {
  char **strings[] = {&c->profile_path, &c->junit_path, &c->html_path,
                      &c->json_path,    &c->bin_dir,    &c->expected_failures_path,
                      &c->fixtures_dir, &c->record_dir};
  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) free(*strings[i]);
  for (size_t i = 0; i < c->selector_count; i++) free(c->selectors[i]);
  free(c->selectors);
  memset(c, 0, sizeof *c);
}

static void set_defaults(cli_config_t *c) {
  memset(c, 0, sizeof *c);
  c->min_selected = 1;
  c->jobs = 1;
  c->shard_index = 1;
  c->shard_count = 1;
  c->repeat = 1;
  c->timeout_factor = 1.0;
  c->progress = PROGRESS_AUTO;
  c->format = LISTING_TEXT;
}

static int replace_string(char **field, const char *value, rc_error_t *err) {
  char *copy = strdup(value);
  if (copy == NULL) return rc_error_set(err, "out of memory");
  free(*field);
  *field = copy;
  return 0;
}

static int add_selector(cli_config_t *c, const char *value, size_t len, rc_error_t *err) {
  char **grown = realloc(c->selectors, (c->selector_count + 1) * sizeof *grown);
  if (grown == NULL) return rc_error_set(err, "out of memory");
  c->selectors = grown;
  if ((c->selectors[c->selector_count] = strndup(value, len)) == NULL)
    return rc_error_set(err, "out of memory");
  c->selector_count++;
  return 0;
}

static void drop_selectors(cli_config_t *c) {
  for (size_t i = 0; i < c->selector_count; i++) free(c->selectors[i]);
  c->selector_count = 0;
}

/* A whole decimal number in [min, max]. */
static int parse_unsigned(const char *text, unsigned long long min, unsigned long long max,
                          unsigned long long *out) {
  if (text == NULL || text[0] == '\0' || strlen(text) > 20) return -1;
  unsigned long long v = 0;
  for (const char *p = text; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    unsigned digit = (unsigned)(*p - '0');
    if (v > (~0ULL - digit) / 10) return -1;
    v = v * 10 + digit;
  }
  if (v < min || v > max) return -1;
  *out = v;
  return 0;
}

int cli_parse_factor(const char *text, double max, double *out) {
  if (text == NULL || text[0] == '\0' || strlen(text) > 12) return -1;
  double whole = 0, scale = 1, frac = 0;
  const char *p = text;
  bool digits = false;
  for (; *p >= '0' && *p <= '9'; p++, digits = true) whole = whole * 10 + (*p - '0');
  if (*p == '.') {
    for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
      scale /= 10;
      frac += (*p - '0') * scale;
    }
  }
  double v = whole + frac;
  if (*p != '\0' || !digits || !(v > 0) || v > max) return -1;
  *out = v;
  return 0;
}

static int parse_flag(const char *text, bool *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcmp(text, yes[i]) == 0) return *out = true, 0;
    if (strcmp(text, no[i]) == 0) return *out = false, 0;
  }
  return -1;
}

/* Applies one option's value; `from` names its origin ("--jobs", "REPLCHECK_JOBS")
 * for messages. value is NULL for a flag given on the command line. */
static int apply(cli_config_t *c, const option_row_t *row, const char *value, const char *from,
                 rc_error_t *err) {
  unsigned long long n = 0;
  bool flag = true;
  if (row->arg == NULL && value != NULL && parse_flag(value, &flag) != 0)
    return rc_error_set(err, "%s: expected 1/true/yes/on or 0/false/no/off, got '%s'", from, value);
  switch (row->id) {
    case OPT_PROFILE:
      return replace_string(&c->profile_path, value, err);
    case OPT_FILTER:
      return add_selector(c, value, strlen(value), err);
    case OPT_JUNIT:
      return replace_string(&c->junit_path, value, err);
    case OPT_HTML:
      return replace_string(&c->html_path, value, err);
    case OPT_JSON:
      return replace_string(&c->json_path, value, err);
    case OPT_BIN_DIR:
      return replace_string(&c->bin_dir, value, err);
    case OPT_EXPECTED_FAILURES:
      return replace_string(&c->expected_failures_path, value, err);
    case OPT_KEEP_LOGS:
      c->keep_logs = flag;
      return 0;
    case OPT_STRICT:
      c->strict = flag;
      return 0;
    case OPT_LIST:
      c->list_only = flag;
      return 0;
    case OPT_MIN:
      if (parse_unsigned(value, 0, 100000, &n) != 0)
        return rc_error_set(err, "%s: expected a number of tests (0..100000), got '%s'", from,
                            value);
      c->min_selected = (unsigned)n;
      return 0;
    case OPT_JOBS:
      if (parse_unsigned(value, 1, 64, &n) != 0)
        return rc_error_set(err, "%s: expected a number of jobs in 1..64, got '%s'", from, value);
      c->jobs = (unsigned)n;
      return 0;
    case OPT_REPEAT:
      if (parse_unsigned(value, 1, 1000, &n) != 0)
        return rc_error_set(err, "%s: expected a repeat count in 1..1000, got '%s'", from, value);
      c->repeat = (unsigned)n;
      return 0;
    case OPT_RETRY:
      if (parse_unsigned(value, 0, 100, &n) != 0)
        return rc_error_set(err, "%s: expected a retry count in 0..100, got '%s'", from, value);
      c->retry = (unsigned)n;
      return 0;
    case OPT_SEED:
      if (parse_unsigned(value, 0, ~0ULL, &n) != 0)
        return rc_error_set(err,
                            "%s: expected a decimal number in 0..18446744073709551615, "
                            "got '%s'",
                            from, value);
      c->seed = (uint64_t)n;
      c->seed_given = true;
      return 0;
    case OPT_SHARD: {
      rc_error_t why;
      if (selection_parse_shard(value, &c->shard_index, &c->shard_count, &why) != 0)
        return rc_error_set(err, "%s: %s", from, why.msg);
      return 0;
    }
    case OPT_TIMEOUT_FACTOR:
      if (cli_parse_factor(value, 100.0, &c->timeout_factor) != 0)
        return rc_error_set(err, "%s: expected a number like 2 or 1.5 in (0, 100], got '%s'", from,
                            value);
      return 0;
    case OPT_PROGRESS:
      if (progress_mode_from_name(value, &c->progress) != 0)
        return rc_error_set(err, "%s: expected auto, plain or none, got '%s'", from, value);
      return 0;
    case OPT_FORMAT:
      if (listing_format_from_name(value, &c->format) != 0)
        return rc_error_set(err, "%s: expected text, markdown or json, got '%s'", from, value);
      return 0;
    case OPT_FIXTURES:
      return replace_string(&c->fixtures_dir, value, err);
    case OPT_RECORD:
      return replace_string(&c->record_dir, value, err);
    case OPT_TORTURE:
      if (parse_unsigned(value, 0, 3, &n) != 0)
        return rc_error_set(err, "%s: expected a torture level in 0..3, got '%s'", from, value);
      c->torture_level = (int)n;
      return 0;
  }
  return rc_error_set(err, "%s: unhandled option", from);
}

static unsigned command_bit(cli_action_t action) {
  return action == CLI_ACTION_LIST ? FOR_LIST : FOR_RUN;
}

/* REPLCHECK_FILTER holds several selectors separated by blanks. */
static int apply_env_filter(cli_config_t *c, const char *value, rc_error_t *err) {
  const char *p = value;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    const char *start = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\n') p++;
    if (p > start && add_selector(c, start, (size_t)(p - start), err) != 0) return -1;
  }
  return 0;
}

static int apply_environment(cli_config_t *c, rc_error_t *err) {
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_row_t *row = &OPTIONS[i];
    if (!(row->commands & command_bit(c->action))) continue;
    const char *value = getenv(row->env);
    if (value == NULL || value[0] == '\0') continue;
    int rc = row->id == OPT_FILTER ? apply_env_filter(c, value, err)
                                   : apply(c, row, value, row->env, err);
    if (rc != 0) return -1;
  }
  return 0;
}

static int parse_command_line(cli_config_t *c, int argc, char **argv, rc_error_t *err) {
  struct option longopts[OPTION_COUNT + 1];
  for (size_t i = 0; i < OPTION_COUNT; i++)
    longopts[i] = (struct option){OPTIONS[i].name, OPTIONS[i].arg ? required_argument : no_argument,
                                  NULL, (int)(1000 + i)};
  longopts[OPTION_COUNT] = (struct option){NULL, 0, NULL, 0};
  const char *command = argv[1];
  bool cli_selectors = false;
  optind = 2;
  opterr = 0; /* our own messages, naming the option */
  int opt;
  while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
    if (opt == '?' || opt == ':') {
      const char *bad = argv[optind - 1];
      return rc_error_set(err,
                          opt == ':' ? "%s: needs an argument (see replcheck --help)"
                                     : "unknown option '%s' (see replcheck --help)",
                          bad);
    }
    const option_row_t *row = &OPTIONS[opt - 1000];
    char from[64];
    snprintf(from, sizeof from, "--%s", row->name);
    if (!(row->commands & command_bit(c->action)))
      return rc_error_set(err, "%s is not an option of `replcheck %s` (see replcheck --help)", from,
                          command);
    if (row->id == OPT_FILTER && !cli_selectors) {
      drop_selectors(c);
      cli_selectors = true;
    }
    if (apply(c, row, row->arg ? optarg : NULL, from, err) != 0) return -1;
  }
  for (int i = optind; i < argc; i++) {
    if (!cli_selectors) {
      drop_selectors(c);
      cli_selectors = true;
    }
    if (add_selector(c, argv[i], strlen(argv[i]), err) != 0) return -1;
  }
  return 0;
}

int cli_parse(int argc, char **argv, cli_config_t *c, rc_error_t *err) {
  set_defaults(c);
  if (argc < 2) return rc_error_set(err, "no command given (expected 'run' or 'list')");
  const char *command = argv[1];
  if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
    c->action = CLI_ACTION_HELP;
    return 0;
  }
  if (strcmp(command, "--help-env") == 0) {
    c->action = CLI_ACTION_HELP_ENV;
    return 0;
  }
  if (strcmp(command, "--version") == 0) {
    c->action = CLI_ACTION_VERSION;
    return 0;
  }
  if (strcmp(command, "run") == 0)
    c->action = CLI_ACTION_RUN;
  else if (strcmp(command, "list") == 0)
    c->action = CLI_ACTION_LIST;
  else
    return rc_error_set(err, "unknown command '%s' (expected 'list' or 'run')", command);
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      c->action = CLI_ACTION_HELP;
      return 0;
    }
  }
  if (apply_environment(c, err) != 0 || parse_command_line(c, argc, argv, err) != 0) return -1;
  return 0;
}

/* Writes text wrapped at 79 columns, continuation lines indented by `indent`. */
static void put_wrapped(FILE *out, const char *text, size_t column, size_t indent) {
  const char *p = text;
  while (*p) {
    const char *word = p;
    while (*p && *p != ' ') p++;
    size_t len = (size_t)(p - word);
    if (column + 1 + len > 79 && column > indent) {
      fprintf(out, "\n%*s", (int)indent, "");
      column = indent;
    } else if (column > indent) {
      fputc(' ', out);
      column++;
    }
    fwrite(word, 1, len, out);
    column += len;
    while (*p == ' ') p++;
  }
  fputc('\n', out);
}

static void print_options(FILE *out, unsigned commands) {
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_row_t *row = &OPTIONS[i];
    if (row->commands != commands) continue;
    char head[64], text[512];
    snprintf(head, sizeof head, "  --%s%s%s", row->name, row->arg ? " " : "",
             row->arg ? row->arg : "");
    snprintf(text, sizeof text, "%s (default: %s)", row->help, row->default_text);
    int width = fprintf(out, "%-26s", head);
    if (width >= 26) {
      fprintf(out, "\n%26s", "");
      width = 26;
    }
    put_wrapped(out, text, (size_t)width, 26);
  }
}

void cli_print_help(FILE *out) {
  fprintf(out,
          "usage: replcheck run --profile FILE [OPTION]... [SELECTOR]...\n"
          "       replcheck list [--profile FILE] [--format FMT] [SELECTOR]...\n"
          "       replcheck --help | --help-env | --version\n"
          "\n"
          "Conformance harness for Synapse-style worker replication: a mock homeserver\n"
          "drives the implementation under test that FILE describes and checks it against\n"
          "the requirements in shared/spec/requirements.md.\n"
          "\n"
          "Selectors (positional or --filter; none = every test):\n"
          "  protocol/handshake/name-first  an exact test id\n"
          "  protocol/handshake             an id prefix (at a '/' boundary)\n"
          "  'protocol/*'                   an fnmatch glob ('*' also spans '/')\n"
          "  tag:slow                       tests with that tag\n"
          "  '!SELECTOR'                    exclude: the others' union minus these; only\n"
          "                                 exclusions = every test minus them\n"
          "  A selector that matches no test at all is a usage error.\n"
          "\n"
          "Options of run and list:\n");
  print_options(out, FOR_RUN | FOR_LIST);
  fprintf(out, "\nOptions of run:\n");
  print_options(out, FOR_RUN);
  fprintf(out, "\nOptions of list:\n");
  print_options(out, FOR_LIST);
  fprintf(out,
          "\nEvery option can also be set by an environment variable (replcheck --help-env);\n"
          "the command line wins.\n"
          "\n"
          "Verdicts: PASS; FAIL (a MUST not met); NON_STRICT (a SHOULD not met: passes\n"
          "unless --strict); SKIP (not applicable, opted out, or interrupted; with reason);\n"
          "XFAIL (listed in --expected-failures and failed); XPASS (listed but passed: a\n"
          "warning, a failure under --strict); ERROR (harness or set-up problem).\n"
          "\n"
          "Exit status: 0 nothing failed (XFAIL does not count; NON_STRICT and XPASS count\n"
          "only with --strict); 1 some test failed or ended in error; 2 usage, profile or\n"
          "expected-failures error, or too few tests selected; 3 the SUT could not be\n"
          "started in any test; 130 interrupted (SIGINT or SIGTERM; reports are still\n"
          "written, tests not run are SKIP \"not run: interrupted\").\n");
}

void cli_print_help_env(FILE *out) {
  fprintf(out, "Environment variables (the command line overrides them; empty = unset):\n");
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_row_t *row = &OPTIONS[i];
    char head[80];
    snprintf(head, sizeof head, "  %s=%s", row->env, row->arg ? row->arg : "1|0");
    int width = fprintf(out, "%-42s", head);
    if (width >= 42) fprintf(out, "\n%42s", "");
    fprintf(out, "--%s%s (default: %s)\n", row->name,
            row->commands == FOR_RUN    ? ", run"
            : row->commands == FOR_LIST ? ", list"
                                        : "",
            row->default_text);
  }
  fprintf(out,
          "\nFlags take 1/true/yes/on or 0/false/no/off. REPLCHECK_FILTER takes several\n"
          "selectors separated by blanks; selectors on the command line replace them.\n");
}

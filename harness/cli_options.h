/* cli_options: the command line and environment of `replcheck`.
 *
 * Every option is one row of a single table (cli_options.c): its name, the
 * environment variable REPLCHECK_<NAME> that also sets it, its argument, default,
 * help text and the commands it belongs to. Parsing, `--help` and `--help-env` are
 * all generated from that table. The environment is read first and the command line
 * overrides it; selectors given on the command line (positional or --filter) replace
 * those of REPLCHECK_FILTER (space-separated there). An environment variable set to
 * the empty string counts as unset.
 *
 * Ownership: cli_config_t owns copies of every string; free with cli_config_clear(). */
#ifndef CLI_OPTIONS_H
#define CLI_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "listing.h"
#include "progress.h"
#include "rc_error.h"

typedef enum cli_action {
  CLI_ACTION_RUN = 1,  /* replcheck run */
  CLI_ACTION_LIST,     /* replcheck list */
  CLI_ACTION_HELP,     /* --help */
  CLI_ACTION_HELP_ENV, /* --help-env */
  CLI_ACTION_VERSION,  /* --version */
} cli_action_t;

typedef struct cli_config {
  cli_action_t action;
  char *profile_path;
  char **selectors;
  size_t selector_count;
  char *junit_path;
  char *html_path;
  char *json_path;
  char *bin_dir;
  char *expected_failures_path;
  bool keep_logs;
  bool strict;
  bool list_only; /* run --list */
  unsigned min_selected;
  unsigned jobs;
  unsigned shard_index; /* K of --shard K/N, 1-based */
  unsigned shard_count; /* N */
  unsigned repeat;
  unsigned retry;
  uint64_t seed;
  bool seed_given;
  double timeout_factor;
  progress_mode_t progress;
  listing_format_t format;
  char *fixtures_dir; /* --fixtures: NULL = the source tree's fixtures/ */
  char *record_dir;   /* --record */
  int torture_level;  /* --torture */
} cli_config_t;

/* Parses argv (argv[1] is the command or --help/--help-env/--version) and the
 * environment into config (which is cleared first). Returns 0, or -1 with err saying
 * which option or variable is wrong and why; the caller prints it and exits 2. */
int cli_parse(int argc, char **argv, cli_config_t *config, rc_error_t *err);

/* Frees every string and zeroes config. */
void cli_config_clear(cli_config_t *config);

/* The --help text, generated from the table. */
void cli_print_help(FILE *out);
/* The --help-env text: every environment variable, its option and default. */
void cli_print_help_env(FILE *out);

/* Parses a decimal number like "2" or "1.5" without the locale (strtod would read
 * "1,5" in a German locale). Returns 0, or -1 if text is not of that form or is not in
 * (0, max]. */
int cli_parse_factor(const char *text, double max, double *out);

#endif

/* replcheck: the command line. Parses arguments and hands over to the runner or the
 * registry listing; only this file decides the process's exit status. */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profile.h"
#include "registry.h"
#include "runner.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: replcheck list [--profile FILE]\n"
          "       replcheck run --profile FILE [--filter GLOB]... [--junit PATH]\n"
          "                     [--keep-logs] [--bin-dir DIR]\n"
          "       replcheck --version | --help\n"
          "\n"
          "Conformance harness for Synapse-style worker replication: a mock homeserver\n"
          "drives the implementation under test that FILE describes and checks it against\n"
          "the requirements in shared/spec/requirements.md.\n"
          "\n"
          "run options:\n"
          "  --profile FILE   the SUT profile (JSON, see docs/PROFILES.md)\n"
          "  --filter GLOB    select tests by id, id prefix (protocol/handshake) or glob;\n"
          "                   repeatable; default: all tests\n"
          "  --junit PATH     JUnit XML report (default reports/<profile>.junit.xml)\n"
          "  --keep-logs      keep every test's work directory (SUT log and output)\n"
          "  --bin-dir DIR    value of {bin_dir} in profiles (default: replcheck's own dir)\n"
          "\n"
          "exit status: 0 all passed, 1 some test failed or errored, 2 usage or profile\n"
          "error (also: no test selected), 3 the SUT could not be started.\n");
}

static int list_tests(const char *profile_path) {
  profile_t *profile = NULL;
  if (profile_path != NULL) {
    rc_error_t err;
    profile = profile_load(profile_path, &err);
    if (profile == NULL) {
      fprintf(stderr, "replcheck: %s\n", err.msg);
      return RC_EXIT_USAGE;
    }
  }
  size_t n;
  const rc_test_def_t *rows = registry_tests(&n);
  for (size_t i = 0; i < n; i++) {
    char dialects[32], transports[32], why[512];
    const char *na = profile ? registry_not_applicable(&rows[i], profile, why, sizeof why) : NULL;
    printf("%-44s %-6s %-14s %-11s %-9s %s%s%s\n", rows[i].id,
           rows[i].level == RC_LEVEL_MUST ? "MUST" : "SHOULD", rows[i].requirements,
           registry_dialects_text(rows[i].dialects, dialects, sizeof dialects),
           registry_transports_text(rows[i].transports, transports, sizeof transports),
           rows[i].requirement, na ? "  [" : "", na ? "skip]" : "");
  }
  printf("%zu tests\n", n);
  profile_destroy(profile);
  return 0;
}

/* Directory of the running executable, so {bin_dir} finds refworker beside it. */
static void own_bin_dir(char *buf, size_t cap) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    snprintf(buf, cap, ".");
    return;
  }
  exe[n] = '\0';
  snprintf(buf, cap, "%s", dirname(exe));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return RC_EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("replcheck %s\n", REPLCHECK_VERSION);
    return 0;
  }
  const char *command = argv[1];
  if (strcmp(command, "list") != 0 && strcmp(command, "run") != 0) {
    fprintf(stderr, "replcheck: unknown command '%s' (expected 'list' or 'run')\n", command);
    usage(stderr);
    return RC_EXIT_USAGE;
  }

  static const struct option options[] = {
      {"profile", required_argument, NULL, 'p'}, {"filter", required_argument, NULL, 'f'},
      {"junit", required_argument, NULL, 'j'},   {"keep-logs", no_argument, NULL, 'k'},
      {"bin-dir", required_argument, NULL, 'b'}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *profile = NULL, *junit = NULL, *bin_dir_arg = NULL;
  const char **filters = calloc((size_t)argc, sizeof *filters);
  size_t filter_count = 0;
  bool keep = false;
  int opt;
  optind = 2;
  while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (opt) {
      case 'p': profile = optarg; break;
      case 'f': filters[filter_count++] = optarg; break;
      case 'j': junit = optarg; break;
      case 'k': keep = true; break;
      case 'b': bin_dir_arg = optarg; break;
      case 'h': usage(stdout); free(filters); return 0;
      default: usage(stderr); free(filters); return RC_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "replcheck: unexpected argument '%s'\n", argv[optind]);
    free(filters);
    return RC_EXIT_USAGE;
  }
  int rc;
  if (strcmp(command, "list") == 0) {
    rc = list_tests(profile);
  } else if (profile == NULL) {
    fprintf(stderr, "replcheck: run needs --profile FILE (try profiles/refworker.json)\n");
    rc = RC_EXIT_USAGE;
  } else {
    char bin_dir[PATH_MAX];
    if (bin_dir_arg != NULL) snprintf(bin_dir, sizeof bin_dir, "%s", bin_dir_arg);
    else own_bin_dir(bin_dir, sizeof bin_dir);
    runner_options_t o = {.profile_path = profile,
                          .filters = filters,
                          .filter_count = filter_count,
                          .junit_path = junit,
                          .bin_dir = bin_dir,
                          .keep_work_dirs = keep,
                          .progress = stdout};
    rc = runner_run(&o);
  }
  free(filters);
  return rc;
}

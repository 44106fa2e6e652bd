/* Helpers shared by the project's own tests (not by the harness). */
#ifndef TEST_SUPPORT_H
#define TEST_SUPPORT_H

#include <stddef.h>
#include <sys/types.h>

/* Value of an environment variable set by tests/CMakeLists.txt
 * (REPLCHECK_SOURCE_DIR, REPLCHECK_BIN_DIR, REPLCHECK_SHARED_DIR); aborts the test
 * with a clear message if it is missing. */
const char *test_env(const char *name);

/* Returns a malloc'd "<dir>/<rel>" path. */
char *test_path(const char *dir, const char *rel);

/* Creates a fresh temporary directory (mkdtemp under $TMPDIR or /tmp) and returns its
 * malloc'd path. */
char *test_make_temp_dir(const char *prefix);

/* Removes a directory tree (best effort). */
void test_remove_tree(const char *path);

/* Reads a whole file into a NUL-terminated malloc'd buffer; *len gets its length
 * (if non-NULL). Returns NULL if it cannot be read. */
char *test_read_file(const char *path, size_t *len);

/* The names in `dir` (without . and ..), sorted, joined by single spaces, as a
 * malloc'd string: shows exactly what a write left behind. Aborts the test if the
 * directory cannot be read. */
char *test_list_dir(const char *dir);

/* Writes a file (creating or truncating). Returns 0 or -1. */
int test_write_file(const char *path, const char *data, size_t len);

/* Runs a shell command line with /bin/sh -c; returns its exit status (0-255) or -1
 * if it was killed by a signal or could not run. Output goes to the test's output. */
int test_run(const char *command_line);

/* Runs a Check suite with the default runner and returns the process exit code
 * (0 when every test passed). Frees the runner. */
struct Suite;
int test_run_suite(struct Suite *suite);

/* Starts args[0] with args (NULL-ended) as a child process. When the environment
 * variable REFWORKER_TEST_WRAPPER is set (e.g. "valgrind --error-exitcode=99"), its
 * space-separated words are put in front, so the same tests judge the program under a
 * checker by its exit status. The child is killed when the test process dies (Check's
 * _exit on a failed assertion, its timeout), so no worker outlives its test. Returns the
 * child's pid; aborts the test if fork fails. */
pid_t test_spawn_wrapped(const char *const *args);

/* A log file's text as a malloc'd string ("" while the file does not exist yet). */
char *test_log_read(const char *path);
/* Offset of the first occurrence of needle in the log, or -1. */
long test_log_offset(const char *path, const char *needle);
/* How often needle occurs in the log. */
size_t test_log_count(const char *path, const char *needle);

/* Pid of a live process whose command line contains both needles (NUL separators read
 * as spaces), or 0. For "no process survived the run" checks. */
int test_find_process(const char *needle1, const char *needle2);

/* Validates a JUnit file against both schemas in shared/junit/ with xmllint.
 * Returns NULL when valid, else a malloc'd message naming the schema. */
char *test_junit_invalid(const char *path);

#endif

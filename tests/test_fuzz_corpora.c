/* The fuzz targets' inputs as regression tests: every file under tests/fuzz/<target>/
 * (the seed corpus, and each crash or sanitizer finding a fuzz run ever made, kept as
 * crash-<what>) goes through the same entry point libFuzzer calls (fuzz/fuzz_*.c,
 * compiled here with FUZZ_ENTRY renamed). A finding that comes back aborts or trips the
 * sanitizers of this build (ASan+UBSan build, valgrind). */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

int fuzz_proto_entry(const uint8_t *data, size_t size);
int fuzz_profile_entry(const uint8_t *data, size_t size);
int fuzz_fixture_entry(const uint8_t *data, size_t size);
int fuzz_prom_entry(const uint8_t *data, size_t size);
int fuzz_sutlog_entry(const uint8_t *data, size_t size);

typedef int (*fuzz_entry_fn)(const uint8_t *data, size_t size);

/* Runs every file of tests/fuzz/<name>/ through entry; returns how many. */
static int replay(const char *name, fuzz_entry_fn entry) {
  char dir_path[4096];
  snprintf(dir_path, sizeof dir_path, "%s/tests/fuzz/%s", test_env("REPLCHECK_SOURCE_DIR"), name);
  DIR *dir = opendir(dir_path);
  ck_assert_msg(dir != NULL, "cannot open %s", dir_path);
  int count = 0;
  struct dirent *d;
  while ((d = readdir(dir)) != NULL) {
    if (d->d_name[0] == '.') continue;
    char *path = test_path(dir_path, d->d_name);
    size_t len = 0;
    char *data = test_read_file(path, &len);
    ck_assert_msg(data != NULL, "cannot read %s", path);
    fprintf(stderr, "%s\n", path); /* names the input if it aborts */
    ck_assert_int_eq(entry((const uint8_t *)data, len), 0);
    free(data);
    free(path);
    count++;
  }
  closedir(dir);
  return count;
}

START_TEST(proto_corpus_and_findings) { ck_assert_int_ge(replay("proto", fuzz_proto_entry), 5); }
END_TEST

START_TEST(profile_corpus_and_findings) {
  ck_assert_int_ge(replay("profile", fuzz_profile_entry), 5);
}
END_TEST

START_TEST(fixture_corpus_and_findings) {
  ck_assert_int_ge(replay("fixture", fuzz_fixture_entry), 5);
}
END_TEST

START_TEST(prom_corpus_and_findings) { ck_assert_int_ge(replay("prom", fuzz_prom_entry), 3); }
END_TEST

START_TEST(sutlog_corpus_and_findings) { ck_assert_int_ge(replay("sutlog", fuzz_sutlog_entry), 3); }
END_TEST

int main(void) {
  Suite *s = suite_create("fuzz_corpora");
  TCase *tc = tcase_create("fuzz_corpora");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, proto_corpus_and_findings);
  tcase_add_test(tc, profile_corpus_and_findings);
  tcase_add_test(tc, fixture_corpus_and_findings);
  tcase_add_test(tc, prom_corpus_and_findings);
  tcase_add_test(tc, sutlog_corpus_and_findings);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}

/* rc_regex: patterns from profiles and fixtures compile at a bounded cost. Stacked
 * quantifiers and large nested repeat counts, which made glibc's regcomp take gigabytes
 * (a fuzz finding, tests/fuzz/fixture/crash-oom-*), are refused at once with a message;
 * the patterns people write compile and match as regcomp's do. */
#include <check.h>
#include <regex.h>
#include <string.h>

#include "rc_regex.h"
#include "test_support.h"

static void assert_compiles(const char *pattern, const char *matching, const char *other) {
  regex_t re;
  rc_error_t err;
  ck_assert_msg(rc_regex_compile(&re, pattern, REG_EXTENDED | REG_NOSUB, &err) == 0, "%s: %s",
                pattern, err.msg);
  ck_assert_msg(regexec(&re, matching, 0, NULL, 0) == 0, "%s should match %s", pattern, matching);
  ck_assert_msg(regexec(&re, other, 0, NULL, 0) != 0, "%s should not match %s", pattern, other);
  regfree(&re);
}

static void assert_refused(const char *pattern, const char *why) {
  regex_t re;
  rc_error_t err;
  ck_assert_int_eq(rc_regex_compile(&re, pattern, REG_EXTENDED | REG_NOSUB, &err), -1);
  ck_assert_msg(strstr(err.msg, why) != NULL, "%s: %s", pattern, err.msg);
}

START_TEST(ordinary_patterns_compile) {
  assert_compiles("Connected to replication", "x Connected to replication y", "Connected");
  assert_compiles("^Synapse/[0-9]+\\.[0-9]+\\.[0-9]+(\\.[0-9]+)?(rc[0-9]+)?( \\([^)]*\\))?$",
                  "Synapse/1.66.0 (b=main)", "TwistedWeb/22");
  assert_compiles("^(REPLICATE ?)$", "REPLICATE ", "REPLICATE x");
  assert_compiles("[]+*{]{2}x", "+{x", "+x");        /* specials inside brackets are literal */
  assert_compiles("a\\+\\+\\+\\+b", "a++++b", "ab");   /* escaped, not quantifiers */
  assert_compiles("[[:digit:]]{3,5}", "1234", "12");
  assert_compiles("(ab|cd){2,}", "abcd", "ab");
  assert_compiles("ready) now+", "ready) nowww", "ready now"); /* a lone ')' is literal */
}
END_TEST

START_TEST(expanding_patterns_are_refused) {
  char stacked[200] = "REPLI";
  memset(stacked + 5, '+', 84);
  strcpy(stacked + 89, "CATE ?");
  assert_refused(stacked, "stacks more than 3 quantifiers on one piece (at offset 8)");
  assert_refused("((a{200}){200}){200}", "would expand");
  assert_refused("(x{1000}){30}", "would expand");
  char deep[300] = "";
  for (int i = 0; i < 70; i++) strcat(deep, "(");
  strcat(deep, "a");
  for (int i = 0; i < 70; i++) strcat(deep, ")");
  assert_refused(deep, "nested deeper than 64");
  assert_refused("a(b", "Unmatched"); /* regcomp's own verdict, as before */
  /* Outside a group ')' is an ordinary character to glibc, and quantifiers stack on it
   * (fuzz finding tests/fuzz/profile/oom-unmatched-paren-quantifiers). */
  char after_paren[200] = "ready)";
  memset(after_paren + 6, '+', 80);
  assert_refused(after_paren, "stacks more than 3 quantifiers");
  /* Few elements, but 49 '?' between '+'s: glibc spent minutes on the empty-transition
   * closure (fuzz finding tests/fuzz/profile/slow-stacked-optional). */
  char optional[200] = "ready++++++++%++++";
  memset(optional + 18, '?', 49);
  strcpy(optional + 67, "+++++");
  assert_refused(optional, "stacks more than 3 quantifiers");
  assert_compiles("a+?b", "aab", "c");  /* two in a row (no lazy form in POSIX) is fine */
  /* Bounds that multiply without stacking are still counted. */
  assert_refused("(((a{30}){30}){30})", "would expand to more than 20000 elements");
}
END_TEST

int main(void) {
  Suite *s = suite_create("regex_bounds");
  TCase *tc = tcase_create("regex_bounds");
  tcase_add_test(tc, ordinary_patterns_compile);
  tcase_add_test(tc, expanding_patterns_are_refused);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}

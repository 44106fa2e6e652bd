/* Fuzz target: the profile loader (profile.h). The input is the profile file: it is
 * put in an in-memory file and loaded by path, as replcheck does; a loaded profile's
 * templates are expanded with every placeholder given, and opt-out lookups run. A
 * refused profile must come with an error message. Crashes, sanitizer reports, leaks
 * and broken invariants (abort) are findings.
 *
 * Built with libFuzzer when REPLCHECK_FUZZ=ON (clang); tests/test_fuzz_corpora.c calls
 * the same entry (FUZZ_ENTRY) on the seed corpus and on every past finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "profile.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void broken(const char *what) {
  fprintf(stderr, "fuzz_profile: invariant broken: %s\n", what);
  abort();
}

/* Expands a template with a value for every placeholder: must never fail, except for
 * an {env:NAME} whose variable is unset here (checked when the run expands it, with an
 * error naming the variable). */
static void expand_all(const char *template_text) {
  if (template_text == NULL) return;
  profile_var_t vars[64];
  size_t n = 0;
  for (size_t i = 0; PROFILE_PLACEHOLDERS[i] != NULL && n < 64; i++)
    vars[n++] = (profile_var_t){PROFILE_PLACEHOLDERS[i], "v"};
  rc_error_t err;
  char *out = profile_expand(template_text, vars, n, &err);
  if (out == NULL && strstr(err.msg, "environment variable") == NULL) {
    fprintf(stderr, "fuzz_profile: '%.200s': %s\n", template_text, err.msg);
    broken("a template accepted at load does not expand with every placeholder given");
  }
  free(out);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
  /* One in-memory file for the whole run: loaded by path like a file on disk. */
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("profile.json", 0);
    if (fd < 0) broken("memfd_create failed");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
    broken("cannot write the in-memory profile");
  rc_error_t err;
  memset(&err, 0, sizeof err);
  profile_t *p = profile_load(path, &err);
  if (p == NULL) {
    if (err.msg[0] == '\0') broken("a refused profile without an error message");
    return 0;
  }
  if (p->command_count == 0 || p->command == NULL) broken("a loaded profile without a command");
  for (size_t i = 0; i < p->command_count; i++) expand_all(p->command[i]);
  for (size_t i = 0; i < p->env_count; i++) expand_all(p->env_values[i]);
  expand_all(p->log_path);
  expand_all(p->readiness_pattern);
  expand_all(p->metrics_url);
  expand_all(p->config_output);
  (void)profile_opt_out_reason(p, "protocol/handshake/name-first");
  (void)profile_transport_name(p->transport);
  profile_destroy(p);
  return 0;
}

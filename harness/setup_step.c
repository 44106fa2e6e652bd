#include "setup_step.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filetail.h"
#include "rc_clock.h"
#include "rc_regex.h"
#include "sut.h"

#define SETUP_POLL_MS 50
#define SETUP_EVIDENCE_LINES 8

static void free_strv(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p != NULL; p++) free(*p);
  free(v);
}

/* argv and "NAME=value" environment, placeholders filled. */
static int expand_command(const setup_step_spec_t *s, char ***argv_out, char ***env_out,
                          rc_error_t *err) {
  const profile_t *p = s->profile;
  char **argv = calloc(p->setup.command_count + 1, sizeof *argv);
  char **env = calloc(p->env_count + 1, sizeof *env);
  *argv_out = argv;
  *env_out = env;
  if (argv == NULL || env == NULL) return rc_error_set(err, "out of memory");
  for (size_t i = 0; i < p->setup.command_count; i++) {
    argv[i] = profile_expand(p->setup.command[i], s->vars, s->var_count, err);
    if (argv[i] == NULL) return rc_error_prefix(err, "profile %s: setup.command[%zu]", p->path, i);
  }
  for (size_t i = 0; i < p->env_count; i++) {
    char *value = profile_expand(p->env_values[i], s->vars, s->var_count, err);
    if (value == NULL) return rc_error_prefix(err, "profile %s: env.%s", p->path, p->env_names[i]);
    int n = asprintf(&env[i], "%s=%s", p->env_names[i], value);
    free(value);
    if (n < 0) {
      env[i] = NULL;
      return rc_error_set(err, "out of memory");
    }
  }
  return 0;
}

static int compile_stop_on(const setup_step_spec_t *s, regex_t *re, bool *have, rc_error_t *err) {
  *have = false;
  if (s->profile->setup.stop_on == NULL) return 0;
  char *pattern = profile_expand(s->profile->setup.stop_on, s->vars, s->var_count, err);
  if (pattern == NULL) return rc_error_prefix(err, "profile %s: setup.stop_on", s->profile->path);
  int rc = rc_regex_compile(re, pattern, REG_EXTENDED | REG_NOSUB, err);
  free(pattern);
  if (rc != 0) return rc_error_prefix(err, "profile %s: setup.stop_on", s->profile->path);
  *have = true;
  return 0;
}

static int fail_with_output(const setup_step_spec_t *s, const char *program, rc_error_t *err,
                            const char *what) {
  char *tail = filetail_last_lines(s->output_path, SETUP_EVIDENCE_LINES);
  rc_error_set(err, "profile %s: setup '%s' %s (output in %s)%s%s", s->profile->path, program,
               what, s->output_path, tail != NULL && tail[0] != '\0' ? "; last lines:\n" : "",
               tail != NULL ? tail : "");
  free(tail);
  return -1;
}

/* Polls until the step exits, its output matches stop_on, or the deadline. */
static int supervise(const setup_step_spec_t *s, sut_t *step, const char *program, regex_t *re,
                     rc_error_t *err) {
  int64_t deadline = rc_clock_mono_ms() + s->timeout_ms;
  long offset = 0;
  for (;;) {
    int status = 0;
    if (sut_has_exited(step, &status)) {
      if (status == 0) return 0;
      char how[128];
      sut_describe_status(status, how, sizeof how);
      return fail_with_output(s, program, err, how);
    }
    if (re != NULL && filetail_scan_regex(s->output_path, &offset, re, NULL, 0)) {
      rc_error_t ignored;
      sut_stop(step, s->grace_ms, NULL, &ignored);
      return 0;
    }
    if (rc_clock_mono_ms() >= deadline) {
      rc_error_t ignored;
      sut_stop(step, 0, NULL, &ignored);
      char what[160];
      snprintf(what, sizeof what, "did not finish within %d ms%s", s->timeout_ms,
               re != NULL ? " (nor print a line matching setup.stop_on)" : "");
      return fail_with_output(s, program, err, what);
    }
    struct timespec nap = {0, SETUP_POLL_MS * 1000000L};
    nanosleep(&nap, NULL);
  }
}

int setup_write_template(const profile_t *profile, const char *field, const char *source_template,
                         const char *output_template, const profile_var_t *vars,
                         size_t var_count, rc_error_t *err) {
  char *source = profile_expand(source_template, vars, var_count, err);
  if (source == NULL) return rc_error_prefix(err, "profile %s: %s.source", profile->path, field);
  char *text = filetail_read_all(source, 1 << 20, err);
  free(source);
  if (text == NULL) return rc_error_prefix(err, "profile %s: %s", profile->path, field);
  char *expanded = profile_expand(text, vars, var_count, err);
  free(text);
  if (expanded == NULL) return rc_error_prefix(err, "profile %s: %s", profile->path, field);
  char *out_path = profile_expand(output_template, vars, var_count, err);
  if (out_path == NULL) {
    free(expanded);
    return rc_error_prefix(err, "profile %s: %s.output", profile->path, field);
  }
  FILE *f = fopen(out_path, "w");
  bool ok = f != NULL && fputs(expanded, f) >= 0;
  if (f != NULL && fclose(f) != 0) ok = false;
  int rc = ok ? 0 : rc_error_set(err, "cannot write %s (%s): %s", out_path, field, strerror(errno));
  free(out_path);
  free(expanded);
  return rc;
}

int setup_step_run(const setup_step_spec_t *s, rc_error_t *err) {
  if (s->profile->setup.command == NULL) return 0;
  const profile_setup_t *ps = &s->profile->setup;
  if (ps->config_template != NULL &&
      setup_write_template(s->profile, "setup.config_template", ps->config_template,
                           ps->config_output, s->vars, s->var_count, err) != 0)
    return -1;
  char **argv = NULL, **env = NULL;
  regex_t re;
  bool have_re = false;
  int rc = expand_command(s, &argv, &env, err);
  if (rc == 0) rc = compile_stop_on(s, &re, &have_re, err);
  sut_t *step = NULL;
  if (rc == 0) {
    sut_spec_t spec = {.argv = argv, .env_extra = env, .work_dir = s->work_dir,
                       .output_path = s->output_path};
    step = sut_start(&spec, err);
    if (step == NULL) rc = rc_error_prefix(err, "profile %s: setup", s->profile->path);
  }
  if (rc == 0) rc = supervise(s, step, argv[0], have_re ? &re : NULL, err);
  sut_destroy(step);
  if (have_re) regfree(&re);
  free_strv(argv);
  free_strv(env);
  return rc;
}

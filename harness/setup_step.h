/* setup_step: runs a profile's "setup" command (docs/PROFILES.md), for example the
 * one that prepares a real Synapse's database before its worker can start.
 *
 * The step runs like a SUT (sut.h: its own process group, stdout and stderr appended
 * to output_path, the profile's "env" added) and succeeds when it exits with status 0,
 * or, when the profile gives setup.stop_on, as soon as a line of its output matches
 * (it is then stopped with SIGTERM, SIGKILL after grace_ms: a server run once to do its
 * start-up work). Anything else -- a non-zero exit, a signal, the deadline -- is an
 * error naming the command, what happened and the output's last lines.
 *
 * Blocking; call it where nothing else must run meanwhile (before the tests, or in a
 * test process before the SUT starts). The caller should be a child subreaper
 * (sut_become_subreaper) so that what the step leaves behind is stopped too. */
#ifndef SETUP_STEP_H
#define SETUP_STEP_H

#include "profile.h"
#include "rc_error.h"

typedef struct setup_step_spec {
  const profile_t *profile;    /* its setup.command must be non-NULL */
  const profile_var_t *vars;   /* placeholder values */
  size_t var_count;
  const char *work_dir;        /* the step's working directory (must exist) */
  const char *output_path;     /* receives its stdout and stderr */
  int timeout_ms;              /* deadline (setup.timeout_ms, scaled by the caller) */
  int grace_ms;                /* SIGTERM -> SIGKILL when it is stopped */
} setup_step_spec_t;

/* Writes a templated file: reads the template at source_template (expanded first),
 * fills its placeholders and writes it to output_template (expanded). field names the
 * profile field in errors ("config_template", "setup.config_template"). Used for the
 * SUT's config file and the setup's. 0, or -1 with err. */
int setup_write_template(const profile_t *profile, const char *field, const char *source_template,
                         const char *output_template, const profile_var_t *vars,
                         size_t var_count, rc_error_t *err);

/* Writes setup.config_template if any, then runs the step. 0 when the step did its
 * job; -1 with err otherwise. */
int setup_step_run(const setup_step_spec_t *spec, rc_error_t *err);

#endif

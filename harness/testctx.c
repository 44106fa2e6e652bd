#include "testctx.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "db_vars.h"
#include "filetail.h"
#include "fixture_record.h"
#include "passive.h"
#include "pg_cluster.h"
#include "pg_passive.h"
#include "rc_clock.h"
#include "rc_regex.h"
#include "rc_net.h"
#include "redis_server.h"
#include "setup_step.h"

/* The ledger note of rc_terminate_sut (also the end of LC-04's window). */
#define SIGTERM_NOTE "harness: SIGTERM to the SUT"

#define EVIDENCE_LEDGER_ROWS 30
#define EVIDENCE_LOG_LINES 20
#define EVIDENCE_OUTPUT_LINES 10

static char *vformat(const char *fmt, va_list ap) {
  char *out = NULL;
  if (vasprintf(&out, fmt, ap) < 0) return NULL;
  return out;
}

static char *path_join(const char *dir, const char *name) {
  char *out = NULL;
  if (asprintf(&out, "%s/%s", dir, name) < 0) return NULL;
  return out;
}

rc_test_t *rc_test_create(const rc_test_def_t *def, const profile_t *profile,
                          const char *bin_dir, const char *work_dir, int test_index,
                          rc_error_t *err) {
  rc_test_t *t = calloc(1, sizeof *t);
  if (t == NULL) {
    rc_error_set(err, "out of memory");
    return NULL;
  }
  t->def = def;
  t->index = test_index;
  t->profile = profile;
  t->bin_dir = bin_dir;
  t->work_dir = strdup(work_dir);
  t->log_path = path_join(work_dir, "sut.log");
  t->output_path = path_join(work_dir, "sut-output.txt");
  /* A server name of its own per test keeps concurrent runs (and a shared Redis)
   * apart. */
  if (asprintf(&t->server_name, "hs%ld-%d.replcheck.test", (long)getpid(), test_index) < 0)
    t->server_name = NULL;
  t->base = event_base_new();
  if (t->work_dir == NULL || t->log_path == NULL || t->output_path == NULL ||
      t->server_name == NULL || t->base == NULL) {
    rc_error_set(err, "cannot set up the test context (out of memory or no event loop)");
    rc_test_destroy(t);
    return NULL;
  }
  mockhs_config_defaults(&t->mock_config, profile->dialect, t->server_name);
  t->mock_config.ping_interval_ms = profile->timing.ping_interval_ms;
  /* A main whose federation sending runs on a worker (send_federation: false) writes
   * the federation stream that worker replicates (requirements.md §9). */
  if ((profile->roles & PROFILE_ROLE_FEDSENDER) &&
      t->mock_config.stream_count < MOCKHS_MAX_STREAMS)
    t->mock_config.streams[t->mock_config.stream_count++] =
        (mockhs_stream_t){.name = "federation", .position = 1};
  for (size_t i = 0; i < profile->position_count; i++) {
    if (mockhs_config_set_position(&t->mock_config, profile->positions[i].stream,
                                   profile->positions[i].position) != 0) {
      rc_error_set(err, "profile %s: positions: more than %d streams", profile->path,
                   MOCKHS_MAX_STREAMS);
      rc_test_destroy(t);
      return NULL;
    }
  }
  return t;
}

void rc_test_destroy(rc_test_t *t) {
  if (t == NULL) return;
  sut_destroy(t->sut);
  pg_passive_stop(t->pg_passive);
  if (t->db_name != NULL && t->pg != NULL) {
    rc_error_t ignored; /* the cluster goes at the end of the run anyway */
    pg_cluster_drop_database(t->pg, t->db_name, &ignored);
  }
  mockhs_destroy(t->mock);
  redis_server_stop(t->redis);
  free(t->vars);
  free(t->db_name);
  free(t->db_dsn);
  if (t->base != NULL) event_base_free(t->base);
  free(t->work_dir);
  free(t->log_path);
  free(t->log_file);
  free(t->output_path);
  free(t->server_name);
  free(t->message);
  free(t->expected);
  free(t->actual);
  free(t->notes);
  free(t->passive_violation);
  free(t);
}

static void decide(rc_test_t *t, verdict_t verdict, char *message, char *expected,
                   char *actual) {
  if (t->decided) {
    free(message);
    free(expected);
    free(actual);
    return;
  }
  t->decided = true;
  t->verdict = verdict;
  t->message = message;
  t->expected = expected;
  t->actual = actual;
}

bool rc_fail(rc_test_t *t, const char *expected, const char *actual_fmt, ...) {
  va_list ap;
  va_start(ap, actual_fmt);
  char *actual = vformat(actual_fmt, ap);
  va_end(ap);
  verdict_t v = t->def->level == RC_LEVEL_SHOULD ? VERDICT_NON_STRICT : VERDICT_FAIL;
  char *message = NULL;
  if (asprintf(&message, "%s: %s", t->def->requirements, actual ? actual : "") < 0)
    message = NULL;
  decide(t, v, message, strdup(expected), actual);
  return false;
}

bool rc_error(rc_test_t *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *message = vformat(fmt, ap);
  va_end(ap);
  decide(t, VERDICT_ERROR, message, NULL, NULL);
  return false;
}

void rc_note(rc_test_t *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *line = vformat(fmt, ap);
  va_end(ap);
  if (line == NULL) return;
  char *joined = NULL;
  if (asprintf(&joined, "%s%s\n", t->notes ? t->notes : "", line) >= 0) {
    free(t->notes);
    t->notes = joined;
  }
  free(line);
}

bool rc_parse_sut_line(const rc_test_t *t, const ledger_entry_t *e, proto_command_t *cmd) {
  if (e == NULL || e->kind != LEDGER_LINE) return false;
  return proto_parse_line(t->profile->dialect, PROTO_SENDER_CLIENT, e->text, e->len, cmd,
                          NULL) == PROTO_OK;
}

bool rc_entry_matches(const rc_test_t *t, const ledger_entry_t *e, const rc_match_t *m) {
  ledger_kind_t kind = m->entry_kind != 0 ? m->entry_kind : LEDGER_LINE;
  if (e->kind != kind) return false;
  if (m->conn_id != 0 && e->conn_id != m->conn_id) return false;
  if (e->conn_id != 0 && mockhs_conn_torture_dropped(t->mock, e->conn_id)) return false;
  if (m->side != 0 && e->side != m->side) return false;
  if (kind != LEDGER_LINE) return true;
  if (m->prefix != NULL && strncmp(e->text, m->prefix, strlen(m->prefix)) != 0) return false;
  if (m->command != PROTO_CMD_NONE) {
    proto_command_t cmd;
    proto_sender_t sender =
        e->side == LEDGER_SIDE_SUT ? PROTO_SENDER_CLIENT : PROTO_SENDER_SERVER;
    if (proto_parse_line(t->profile->dialect, sender, e->text, e->len, &cmd, NULL) != PROTO_OK)
      return false;
    if (cmd.kind != m->command) return false;
  }
  return true;
}

typedef struct match_arg {
  const rc_test_t *t;
  const rc_match_t *m;
} match_arg_t;

static bool match_thunk(const ledger_entry_t *e, void *arg) {
  match_arg_t *a = arg;
  return rc_entry_matches(a->t, e, a->m);
}

const ledger_entry_t *rc_wait(rc_test_t *t, uint64_t from_seq, const rc_match_t *m,
                              int timeout_ms) {
  match_arg_t arg = {t, m};
  return mockhs_wait_for(t->mock, from_seq, match_thunk, &arg, timeout_ms);
}

uint64_t rc_now_seq(rc_test_t *t) { return ledger_next_seq(mockhs_ledger(t->mock)); }

void rc_observe(rc_test_t *t, int duration_ms) { mockhs_run_for(t->mock, duration_ms); }

int64_t rc_entry_gap_ms(const ledger_entry_t *a, const ledger_entry_t *b) {
  return (b->mono_ns - a->mono_ns) / 1000000;
}

/* ---- starting the SUT ------------------------------------------------------------ */

typedef struct rc_vars {
  char port[16];
  char http_port[16];
  char http_url[64];
  char sut_http_port[16];
  char redis_port[16];
  char profile_dir[4096];
  db_vars_t db;
  profile_var_t list[24];
  size_t count;
} vars_t;


static void vars_fill(const rc_test_t *t, vars_t *v) {
  snprintf(v->port, sizeof v->port, "%d", mockhs_port(t->mock));
  snprintf(v->http_port, sizeof v->http_port, "%d", mockhs_http_port(t->mock));
  snprintf(v->http_url, sizeof v->http_url, "http://127.0.0.1:%d", mockhs_http_port(t->mock));
  snprintf(v->sut_http_port, sizeof v->sut_http_port, "%d", rc_net_free_port());
  snprintf(v->profile_dir, sizeof v->profile_dir, "%s", t->profile->dir);
  snprintf(v->redis_port, sizeof v->redis_port, "%d", t->redis ? redis_server_port(t->redis) : 0);
  const profile_var_t list[] = {
      {"redis_host", "127.0.0.1"},
      {"redis_port", v->redis_port},
      {"repl_host", "127.0.0.1"},
      {"repl_port", v->port},
      {"http_url", v->http_url},
      {"http_port", v->http_port},
      {"sut_http_port", v->sut_http_port},
      {"log_path", t->log_path},
      {"work_dir", t->work_dir},
      {"server_name", t->server_name},
      {"bin_dir", t->bin_dir},
      {"profile_dir", v->profile_dir},
      {"instance_name", t->profile->instance_name},
  };
  v->count = sizeof list / sizeof list[0];
  memcpy(v->list, list, sizeof list);
  /* The database placeholders come from the test's own database in the run's cluster
   * (role pg), else from REPLCHECK_DB_DSN; without either (or with a malformed
   * REPLCHECK_DB_DSN) they have no value, and a template naming one fails naming it. */
  rc_error_t ignored;
  int got = t->db_dsn != NULL ? db_vars_parse(t->db_dsn, &v->db, &ignored)
                              : db_vars_from_env(&v->db, &ignored);
  if (got == 0)
    v->count += db_vars_list(&v->db, v->list + v->count,
                             sizeof v->list / sizeof v->list[0] - v->count);
}

/* The profile's per-test setup, before the SUT (the mock does not serve meanwhile). */
static bool run_test_setup(rc_test_t *t, const vars_t *v) {
  if (t->profile->setup.command == NULL || !t->profile->setup.per_test) return true;
  char *output = path_join(t->work_dir, "setup-output.txt");
  if (output == NULL) return rc_error(t, "out of memory");
  setup_step_spec_t spec = {.profile = t->profile, .vars = v->list, .var_count = v->count,
                            .work_dir = t->work_dir, .output_path = output,
                            .timeout_ms = t->profile->setup.timeout_ms,
                            .grace_ms = t->profile->timing.shutdown_grace_ms};
  rc_error_t err;
  bool ok = setup_step_run(&spec, &err) == 0;
  free(output);
  if (!ok) {
    t->sut_start_failed = true;
    return rc_error(t, "the SUT could not be started: %s", err.msg);
  }
  return true;
}

static void free_strv(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p != NULL; p++) free(*p);
  free(v);
}

/* Writes the profile's config template, placeholders filled. */
static bool write_config(rc_test_t *t, const vars_t *v) {
  if (t->profile->config_template == NULL) return true;
  rc_error_t err;
  if (setup_write_template(t->profile, "config_template", t->profile->config_template,
                           t->profile->config_output, v->list, v->count, &err) != 0)
    return rc_error(t, "%s", err.msg);
  return true;
}

/* The file the SUT logs to: the profile's log.path, or else its captured output. */
static bool choose_log_file(rc_test_t *t, const vars_t *v) {
  if (t->profile->log_path == NULL) {
    t->log_file = strdup(t->output_path);
  } else {
    rc_error_t err;
    t->log_file = profile_expand(t->profile->log_path, v->list, v->count, &err);
    if (t->log_file == NULL)
      return rc_error(t, "profile %s: log.path: %s", t->profile->path, err.msg);
  }
  return t->log_file != NULL || rc_error(t, "out of memory");
}

/* Records the SUT's process group for the parent runner, which kills it if this
 * test process dies before its own teardown (crash, Check timeout). */
static void record_pgid(const rc_test_t *t) {
  char *path = path_join(t->work_dir, "sut.pgid");
  if (path == NULL) return;
  FILE *f = fopen(path, "w");
  if (f != NULL) {
    fprintf(f, "%ld\n", (long)sut_pid(t->sut));
    fclose(f);
  }
  free(path);
}

typedef struct ready_state {
  rc_test_t *t;
  regex_t *pattern;
  long log_offset;
  bool exited;
  int status;
} ready_state_t;

static bool ready_or_exited(void *arg) {
  ready_state_t *s = arg;
  if (sut_has_exited(s->t->sut, &s->status)) {
    s->exited = true;
    return true;
  }
  if (s->pattern == NULL) return mockhs_accepted_count(s->t->mock) > 0;
  return filetail_scan_regex(s->t->log_file, &s->log_offset, s->pattern, NULL, 0);
}

/* The ledger drops entries when a SUT floods the mock: the passive checks still see
 * every line, on its way out. */
static void check_dropped_entry(const ledger_entry_t *e, void *arg) {
  rc_test_t *t = arg;
  char why[512];
  if (t->passive_violation == NULL && !passive_check_entry(e, t->profile, why, sizeof why))
    t->passive_violation = strdup(why);
}

/* Redis transport: a private redis-server for this test, and the mock on it. */
static bool start_redis(rc_test_t *t) {
  char *dir = path_join(t->work_dir, "redis");
  if (dir == NULL || mkdir(dir, 0700) != 0) {
    free(dir);
    return rc_error(t, "cannot create the redis directory in %s", t->work_dir);
  }
  rc_error_t err;
  t->redis = redis_server_start(dir, 5000, &err);
  free(dir);
  if (t->redis == NULL) return rc_error(t, "%s", err.msg);
  t->mock_config.redis_host = "127.0.0.1";
  t->mock_config.redis_port = redis_server_port(t->redis);
  return true;
}

/* fedsender.remote_args once per remote of the body, into argv (room for all). */
static bool expand_remote_args(rc_test_t *t, char **argv) {
  if (t->remote_count > 0 && t->profile->remote_arg_count == 0)
    return rc_error(t, "harness: the test has fake remote servers but profile %s declares no "
                    "fedsender.remote_args", t->profile->path);
  size_t n = 0;
  for (size_t r = 0; r < t->remote_count; r++) {
    const profile_var_t remote[] = {{"remote_name", t->remotes[r].name},
                                    {"remote_url", t->remotes[r].url}};
    for (size_t i = 0; i < t->profile->remote_arg_count; i++) {
      char field[64];
      snprintf(field, sizeof field, "fedsender.remote_args[%zu]", i);
      argv[n] = rc_expand(t, field, t->profile->remote_args[i], remote, 2);
      if (argv[n++] == NULL) return false;
    }
  }
  return true;
}

/* client.user_args once per profile user, into argv (room for all); returns how many
 * elements it wrote, or -1 after recording an ERROR. */
static long expand_user_args(rc_test_t *t, char **argv) {
  const profile_t *p = t->profile;
  size_t n = 0;
  for (size_t u = 0; u < p->user_count && p->user_arg_count > 0; u++) {
    const profile_var_t user[] = {{"user_id", p->users[u].user_id},
                                  {"access_token", p->users[u].access_token},
                                  {"device_id", p->users[u].device_id ? p->users[u].device_id : ""}};
    for (size_t i = 0; i < p->user_arg_count; i++) {
      char field[64];
      snprintf(field, sizeof field, "client.user_args[%zu]", i);
      argv[n] = rc_expand(t, field, p->user_args[i], user, 3);
      if (argv[n++] == NULL) return -1;
    }
  }
  return (long)n;
}

/* Role pg: a database of this test's own in the run's cluster, and its DSN, whose
 * application_name says which test the session belongs to (docs/PROFILES.md). */
static bool create_database(rc_test_t *t) {
  if (t->pg == NULL)
    return rc_error(t, "the profile has role pg but there is no database cluster: %s",
                    t->pg_error ? t->pg_error : "none was started");
  char app[64];
  snprintf(app, sizeof app, "replcheck-%s", t->def->id);
  /* The serial keeps in-process attempts (CK_FORK=no) of one item apart. */
  static unsigned serial;
  if (asprintf(&t->db_name, "replcheck_%ld_%d_%u", (long)getpid(), t->index, ++serial) < 0) {
    t->db_name = NULL;
    return rc_error(t, "out of memory");
  }
  rc_error_t err;
  if (pg_cluster_create_database(t->pg, t->db_name, &err) != 0) return rc_error(t, "%s", err.msg);
  t->db_dsn = pg_cluster_sut_dsn(t->pg, t->db_name, app);
  char *admin = pg_cluster_admin_dsn(t->pg, t->db_name, "replcheck-db03-sampler");
  if (t->db_dsn == NULL || admin == NULL) {
    free(admin);
    return rc_error(t, "out of memory");
  }
  t->pg_passive = pg_passive_start(t->base, admin, PG_PASSIVE_PERIOD_MS,
                                   PG_PASSIVE_IDLE_XACT_MAX_MS, &err);
  free(admin);
  return t->pg_passive != NULL || rc_error(t, "%s", err.msg);
}

bool rc_start(rc_test_t *t) {
  rc_error_t err;
  if (t->profile->transport == PROFILE_TRANSPORT_REDIS && !start_redis(t)) return false;
  if ((t->profile->roles & PROFILE_ROLE_PG) != 0 && !create_database(t)) return false;
  t->mock_config.torture_level = t->torture_level;
  t->mock_config.torture_seed = t->seed;
  t->mock = mockhs_create(t->base, &t->mock_config, &err);
  if (t->mock == NULL) return rc_error(t, "%s", err.msg);
  ledger_set_drop_hook(mockhs_ledger(t->mock), check_dropped_entry, t);
  /* Over Redis the mock must be subscribed before the SUT publishes its REPLICATE. */
  if (!mockhs_transport_ready(t->mock, 5000, &err)) return rc_error(t, "%s", err.msg);

  /* Kept for rc_expand: URLs must name the same ports as the SUT's command line. */
  t->vars = calloc(1, sizeof *t->vars);
  if (t->vars == NULL) return rc_error(t, "out of memory");
  vars_fill(t, t->vars);
  const vars_t *vp = t->vars;
  size_t argc = t->profile->command_count + t->profile->user_count * t->profile->user_arg_count +
                t->remote_count * t->profile->remote_arg_count;
  char **argv = calloc(argc + 1, sizeof *argv);
  char **envv = calloc(t->profile->env_count + 1, sizeof *envv);
  if (argv == NULL || envv == NULL) {
    free(argv);
    free(envv);
    return rc_error(t, "out of memory");
  }
  bool ok = true;
  for (size_t i = 0; ok && i < t->profile->command_count; i++) {
    argv[i] = profile_expand(t->profile->command[i], vp->list, vp->count, &err);
    if (argv[i] == NULL) ok = rc_error(t, "profile %s: command[%zu]: %s", t->profile->path, i, err.msg);
  }
  long user_argc = ok ? expand_user_args(t, argv + t->profile->command_count) : 0;
  if (user_argc < 0) ok = false;
  if (ok) ok = expand_remote_args(t, argv + t->profile->command_count + user_argc);
  for (size_t i = 0; ok && i < t->profile->env_count; i++) {
    char *value = profile_expand(t->profile->env_values[i], vp->list, vp->count, &err);
    if (value == NULL) {
      ok = rc_error(t, "profile %s: env.%s: %s", t->profile->path, t->profile->env_names[i],
                    err.msg);
    } else if (asprintf(&envv[i], "%s=%s", t->profile->env_names[i], value) < 0) {
      envv[i] = NULL;
      ok = rc_error(t, "out of memory");
    }
    free(value);
  }
  if (ok) ok = write_config(t, vp);
  if (ok) ok = choose_log_file(t, vp);
  if (ok) ok = run_test_setup(t, vp);
  if (ok) {
    sut_spec_t spec = {.argv = argv,
                       .env_extra = envv,
                       .work_dir = t->work_dir,
                       .output_path = t->output_path};
    t->sut = sut_start(&spec, &err);
    if (t->sut == NULL) {
      t->sut_start_failed = true;
      ok = rc_error(t, "the SUT could not be started: %s", err.msg);
    }
  }
  free_strv(argv);
  free_strv(envv);
  if (!ok) return false;
  record_pgid(t);
  t->started_ms = rc_clock_mono_ms();

  ready_state_t state = {.t = t};
  regex_t pattern;
  if (t->profile->readiness_kind == PROFILE_READY_LOG) {
    char *text = profile_expand(t->profile->readiness_pattern, vp->list, vp->count, &err);
    int bad =
        text == NULL ? -1 : rc_regex_compile(&pattern, text, REG_EXTENDED | REG_NOSUB, NULL);
    free(text);
    if (bad != 0)
      return rc_error(t, "profile %s: readiness.pattern does not expand or compile", t->profile->path);
    state.pattern = &pattern;
  }
  int timeout = t->profile->timing.startup_timeout_ms;
  bool ready = mockhs_run_until(t->mock, ready_or_exited, &state, timeout, 20);
  if (state.pattern != NULL) regfree(&pattern);
  if (state.exited) {
    char how[128];
    sut_describe_status(state.status, how, sizeof how);
    t->sut_start_failed = true;
    return rc_error(t, "the SUT %s during start-up, before it was ready", how);
  }
  if (!ready) {
    t->sut_start_failed = true;
    if (state.pattern != NULL)
      return rc_error(t, "the SUT was not ready within %d ms: no log line in %s matched /%s/",
                      timeout, t->log_file, t->profile->readiness_pattern);
    if (t->redis != NULL)
      return rc_error(t, "the SUT was not ready within %d ms: it published nothing on the redis "
                      "channel %s (redis-server 127.0.0.1:%d)", timeout, t->server_name,
                      redis_server_port(t->redis));
    return rc_error(t, "the SUT was not ready within %d ms: it never connected to the mock "
                    "homeserver on 127.0.0.1:%d", timeout, mockhs_port(t->mock));
  }
  return true;
}

typedef struct exit_state {
  sut_t *sut;
  int status;
} exit_state_t;

static bool sut_exited(void *arg) {
  exit_state_t *s = arg;
  return sut_has_exited(s->sut, &s->status);
}

typedef struct survivors_state {
  sut_t *sut;
  int group, outside;
  bool unknown; /* /proc could not be read */
} survivors_state_t;

static bool no_survivors(void *arg) {
  survivors_state_t *s = arg;
  s->unknown = sut_survivors(s->sut, &s->group, &s->outside, NULL) != 0;
  return s->unknown || s->group + s->outside == 0;
}

/* After the main process exited: waits until deadline_ms for the rest of the SUT (its
 * group, escaped descendants) to be gone. */
static bool rest_gone_within(rc_test_t *t, int64_t deadline_ms) {
  survivors_state_t s = {.sut = t->sut};
  int64_t left = deadline_ms - rc_clock_mono_ms();
  if (mockhs_run_until(t->mock, no_survivors, &s, left > 0 ? (int)left : 0, 10)) {
    if (s.unknown) rc_note(t, "could not check for processes the SUT left behind (/proc unreadable)");
    return true;
  }
  rc_note(t, "CL-05: the SUT's main process exited after SIGTERM, but %d process(es) of its "
          "group and %d that had left the group were still running %d ms after SIGTERM",
          s.group, s.outside, t->profile->timing.shutdown_grace_ms);
  return false;
}

bool rc_sigterm_sut(rc_test_t *t) {
  if (t->sut == NULL) return false;
  /* In the ledger: evidence, and the `terminate` step of a recording. */
  if (t->mock != NULL)
    ledger_append(mockhs_ledger(t->mock), 0, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE,
                  SIGTERM_NOTE, sizeof SIGTERM_NOTE - 1);
  kill(sut_pid(t->sut), SIGTERM);
  return true;
}

bool rc_terminate_sut(rc_test_t *t, double *seconds, int *status) {
  int64_t start = rc_clock_mono_ms();
  if (!rc_sigterm_sut(t)) return false;
  exit_state_t s = {.sut = t->sut};
  bool exited = mockhs_run_until(t->mock, sut_exited, &s, t->profile->timing.shutdown_grace_ms, 10);
  if (seconds != NULL) *seconds = (double)(rc_clock_mono_ms() - start) / 1000.0;
  if (status != NULL) *status = s.status;
  /* Let the mock record the close that came with the exit. */
  if (exited) mockhs_run_for(t->mock, 20);
  if (exited) exited = rest_gone_within(t, start + t->profile->timing.shutdown_grace_ms);
  return exited;
}

char *rc_expand(rc_test_t *t, const char *field, const char *template_text,
                const profile_var_t *extra, size_t extra_count) {
  if (t->vars == NULL) {
    rc_error(t, "harness: %s expanded before the SUT was started", field);
    return NULL;
  }
  profile_var_t list[40];
  size_t n = 0;
  for (size_t i = 0; i < extra_count && n < sizeof list / sizeof list[0]; i++) list[n++] = extra[i];
  for (size_t i = 0; i < t->vars->count && n < sizeof list / sizeof list[0]; i++)
    list[n++] = t->vars->list[i];
  rc_error_t err;
  char *out = profile_expand(template_text, list, n, &err);
  if (out == NULL) rc_error(t, "profile %s: %s: %s", t->profile->path, field, err.msg);
  return out;
}

/* ---- teardown and evidence -------------------------------------------------------- */

/* What teardown found: a SUT that had died during the test, one that ignored SIGTERM,
 * processes that had escaped its group. */
static void note_teardown(rc_test_t *t, const sut_stop_result_t *stopped) {
  char how[128];
  sut_describe_status(stopped->status, how, sizeof how);
  if (!stopped->was_running)
    rc_note(t, "the SUT had already ended before teardown: %s", how);
  else if (!stopped->exited_on_term)
    rc_note(t, "teardown: the SUT was still running %d ms after SIGTERM and was killed (SIGKILL)",
            t->profile->timing.shutdown_grace_ms);
  if (stopped->stragglers > 0)
    rc_note(t, "teardown killed %d SUT process(es) that had left its process group",
            stopped->stragglers);
}

static char *build_evidence(rc_test_t *t) {
  char *ledger = t->mock != NULL ? ledger_format_tail(mockhs_ledger(t->mock), EVIDENCE_LEDGER_ROWS)
                                 : NULL;
  const char *log_file = t->log_file ? t->log_file : t->log_path;
  char *log = filetail_last_lines(log_file, EVIDENCE_LOG_LINES);
  /* The SUT's own stdout/stderr tells why it would not start (a usage error, a crash
   * message); show it too when the log is a separate file. */
  char *output = strcmp(log_file, t->output_path) != 0
                     ? filetail_last_lines(t->output_path, EVIDENCE_OUTPUT_LINES)
                     : NULL;
  char *out = NULL;
  if (asprintf(&out, "%s%sLast ledger lines ('>' mock to SUT, '<' SUT to mock):\n%s\n"
               "Last SUT log lines (%s):\n%s%s%s%s",
               t->notes ? t->notes : "", t->notes ? "\n" : "",
               ledger && ledger[0] ? ledger : "(no replication traffic)\n", log_file,
               log && log[0] ? log : "(empty)\n",
               output && output[0] ? "\nLast SUT output lines (stdout/stderr):\n" : "",
               output && output[0] ? output : "", "") < 0)
    out = NULL;
  free(ledger);
  free(log);
  free(output);
  return out;
}

/* --record: the body's exchange (not the teardown) as a fixture. */
static void record_body(rc_test_t *t) {
  if (t->record_dir == NULL || t->mock == NULL) return;
  rc_error_t err;
  char path[4096];
  if (fixture_record_test(t, t->record_dir, ledger_next_seq(mockhs_ledger(t->mock)), path,
                          sizeof path, &err) != 0)
    rc_note(t, "not recorded: %s", err.msg);
}

static long long mono_to_wall_ms(int64_t mono_ns) {
  return (long long)(rc_clock_wall_ms() - (rc_clock_mono_ns() - mono_ns) / 1000000);
}

/* Wall-clock ms up to which LC-04 applies (passive.h): from the first replication close
 * and the harness's SIGTERM in the ledger, and `body_end_ns` (the teardown's SIGTERM). */
static long long lc04_until_wall_ms(rc_test_t *t, int64_t body_end_ns) {
  long long close_ms = -1, sigterm_ms = -1;
  bool closed_by_sut = false;
  ledger_t *ledger = t->mock != NULL ? mockhs_ledger(t->mock) : NULL;
  for (uint64_t seq = ledger ? ledger_first_seq(ledger) : 0;
       ledger != NULL && seq < ledger_next_seq(ledger); seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e == NULL) continue;
    if (e->kind == LEDGER_CLOSE && close_ms < 0) {
      close_ms = mono_to_wall_ms(e->mono_ns);
      closed_by_sut = e->side == LEDGER_SIDE_SUT;
    }
    if (e->kind == LEDGER_NOTE && sigterm_ms < 0 && strcmp(e->text, SIGTERM_NOTE) == 0)
      sigterm_ms = mono_to_wall_ms(e->mono_ns);
    if (close_ms >= 0 && sigterm_ms >= 0) break;
  }
  return passive_lc04_until_ms(close_ms, closed_by_sut, sigterm_ms,
                               mono_to_wall_ms(body_end_ns));
}

void rc_test_execute(rc_test_t *t, report_case_t *out) {
  int64_t start = rc_clock_mono_ms();
  t->def->run(t);
  int64_t body_end_ns = rc_clock_mono_ns();
  record_body(t);
  if (t->sut != NULL) {
    sut_stop_result_t stopped;
    rc_error_t err;
    if (sut_stop(t->sut, t->profile->timing.shutdown_grace_ms, &stopped, &err) != 0)
      rc_error(t, "could not stop the SUT: %s", err.msg);
    else
      note_teardown(t, &stopped);
  }
  if (t->mock != NULL) mockhs_run_for(t->mock, 0);
  char why[512];
  if (t->passive_violation != NULL) snprintf(why, sizeof why, "%s", t->passive_violation);
  if (t->mock != NULL &&
      (t->passive_violation != NULL ||
       !passive_check_ledger(mockhs_ledger(t->mock), t->profile, why, sizeof why))) {
    /* A passive requirement broken during any test fails that test, MUST-level. */
    decide(t, VERDICT_FAIL, strdup(why),
           strdup("every line the SUT writes is valid for its dialect "
                  "and role (FR-02, KA-02, OUT-10)"),
           strdup(why));
  }
  if (t->sut != NULL && !passive_check_log(t->log_file, t->profile, why, sizeof why))
    decide(t, VERDICT_FAIL, strdup(why),
           strdup("the SUT never logs Twisted's 'Unhandled error in Deferred:' (BG-07)"),
           strdup(why));
  if (t->sut != NULL && !passive_check_logcontext(t->log_file, t->profile,
                                                  lc04_until_wall_ms(t, body_end_ns), why,
                                                  sizeof why))
    decide(t, VERDICT_FAIL, strdup(why),
           strdup("no database work in the sentinel context (LC-03) and no logcontext "
                  "mismatch warning before the first disconnect or SIGTERM (LC-04)"),
           strdup(why));
  if (t->pg_passive != NULL && pg_passive_violation(t->pg_passive) != NULL)
    decide(t, VERDICT_FAIL, strdup(pg_passive_violation(t->pg_passive)),
           strdup("no SUT session idle in a transaction for more than 10 s, sampled every "
                  "second during every test (DB-03)"),
           strdup(pg_passive_violation(t->pg_passive)));
  out->seconds = (double)(rc_clock_mono_ms() - start) / 1000.0;
  out->verdict = t->decided ? t->verdict : VERDICT_PASS;
  report_set(&out->message, t->message);
  report_set(&out->expected, t->expected);
  report_set(&out->actual, t->actual);
  if (out->verdict != VERDICT_PASS) {
    if (t->torture_level > 0) {
      char summary[400] = "";
      if (t->mock != NULL) mockhs_torture_summary(t->mock, summary, sizeof summary);
      rc_note(t, "Under torture (%s): reproduce with `replcheck run --torture %d --seed %llu "
              "%s`; each decision is in the ledger ('--- torture:').",
              summary[0] ? summary : "mock not started", t->torture_level,
              (unsigned long long)t->run_seed, t->def->id);
    }
    char *evidence = build_evidence(t);
    report_set(&out->evidence, evidence);
    free(evidence);
    char *output = filetail_last_lines(t->output_path, EVIDENCE_OUTPUT_LINES);
    report_set(&out->output, output);
    free(output);
  }
}

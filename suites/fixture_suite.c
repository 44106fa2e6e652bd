#include "fixture_suite.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_remote.h"
#include "fixture.h"
#include "fixture_play.h"
#include "pg_cluster.h"
#include "pg_observer.h"
#include "suite_util.h"
#include "registry.h"
#include "testctx.h"

#define MAX_FIXTURES 10000
#define MAX_DEPTH 16
#define IDLE_IN_TRANSACTION_MS 1000 /* db idle-in-transaction: idle that long in a transaction */

typedef struct entry {
  char *id;    /* "fixtures/<rel>" */
  char *shown; /* the path as shown: "<display_root>/<rel>.fixture" */
  char *path;  /* the path to read */
  fixture_t *fixture;
  char *error; /* load error (fixture == NULL) */
  unsigned roles;
} entry_t;

static entry_t *entries;
static size_t entry_count;
static rc_test_def_t *rows;

/* Roles a fixture may name: profile.h's, by the names profiles use. */
static const struct {
  const char *name;
  unsigned bit;
} ROLES[] = {{"worker", PROFILE_ROLE_WORKER},
             {"fedsender", PROFILE_ROLE_FEDSENDER},
             {"presence_writer", PROFILE_ROLE_PRESENCE_WRITER},
             {"sync", PROFILE_ROLE_SYNC},
             {"client", PROFILE_ROLE_CLIENT},
             {"caches", PROFILE_ROLE_CACHES},
             {"pg", PROFILE_ROLE_PG}};

static const entry_t *entry_of(const char *id) {
  for (size_t i = 0; i < entry_count; i++)
    if (strcmp(entries[i].id, id) == 0) return &entries[i];
  return NULL;
}

/* ---- the test body -------------------------------------------------------------------- */

/* The `terminate` step. */
static bool terminate_sut(void *arg, char *why, size_t cap) {
  rc_test_t *t = arg;
  double seconds = 0;
  int status = 0;
  if (rc_terminate_sut(t, &seconds, &status)) {
    snprintf(why, cap, "the worker exited %.3f s after SIGTERM", seconds);
    return true;
  }
  snprintf(why, cap, "the worker did not exit within %d ms of SIGTERM",
           t->profile->timing.shutdown_grace_ms);
  return false;
}

/* The fixture's fake federation remotes on the test's loop, given to the SUT through the
 * profile's fedsender.remote_args (the registry skipped profiles without role fedsender).
 * false after recording an ERROR; stop_remotes() either way. */
static bool start_remotes(rc_test_t *t, const fixture_t *f, fake_remote_t **remotes,
                          rc_remote_t *args) {
  rc_error_t err;
  for (size_t i = 0; i < f->remote_count; i++) {
    if ((remotes[i] = fake_remote_create(t->base, f->remotes[i], &err)) == NULL)
      return rc_error(t, "%s", err.msg);
    args[i] = (rc_remote_t){f->remotes[i], fake_remote_url(remotes[i])};
  }
  t->remotes = args;
  t->remote_count = f->remote_count;
  return true;
}

static void stop_remotes(rc_test_t *t, fake_remote_t **remotes, size_t count) {
  char line[2048];
  for (size_t i = 0; i < count && remotes[i] != NULL; i++)
    rc_note(t, "%s", fake_remote_describe(remotes[i], 12, line, sizeof line));
  t->remotes = NULL;
  t->remote_count = 0;
  for (size_t i = 0; i < count; i++) fake_remote_destroy(remotes[i]);
}

/* A db step's sample of the test's database (fixture_env_t.db_sample): the SUT's
 * sessions, all or those idle in a transaction for IDLE_IN_TRANSACTION_MS or more. */
static int db_sample(void *arg, const char *quantity, double *value, char *seen, size_t cap) {
  pg_observer_t *o = arg;
  pg_session_t *list = NULL;
  size_t n = 0;
  rc_error_t err;
  if (pg_observer_sessions(o, &list, &n, &err) != 0) {
    snprintf(seen, cap, "%s", err.msg);
    return -1;
  }
  bool idle_only = strcmp(quantity, "idle-in-transaction") == 0;
  size_t counted = 0, used = 0;
  seen[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    /* A transaction between two statements is not one left open. */
    if (idle_only && (strcmp(list[i].state, "idle in transaction") != 0 ||
                      list[i].state_age_ms < IDLE_IN_TRANSACTION_MS))
      continue;
    char one[512];
    pg_session_describe(&list[i], one, sizeof one);
    int w =
        used + 1 < cap ? snprintf(seen + used, cap - used, "%s%s", counted ? "; " : "", one) : 0;
    used = w < 0 ? used : (size_t)w >= cap - used ? cap - 1 : used + (size_t)w;
    counted++;
  }
  if (counted == 0) snprintf(seen, cap, "no such session (%zu in all)", n);
  free(list);
  *value = (double)counted;
  return 0;
}

/* The harness's session on the test's database for db steps, or NULL after an ERROR. */
static pg_observer_t *db_observe(rc_test_t *t) {
  return suite_db_observer(t, "replcheck-fixture");
}

static void fixture_play_test(rc_test_t *t, const entry_t *e, fake_remote_t *const *remotes);

static void fixture_test(rc_test_t *t) {
  const entry_t *e = entry_of(t->def->id);
  if (e == NULL) {
    rc_error(t, "no fixture is loaded for test %s", t->def->id);
    return;
  }
  if (e->fixture == NULL) {
    rc_error(t, "%s", e->error);
    return;
  }
  fixture_apply_config(e->fixture, &t->mock_config);
  fake_remote_t *remotes[FIXTURE_MAX_REMOTES] = {0};
  rc_remote_t args[FIXTURE_MAX_REMOTES];
  if (start_remotes(t, e->fixture, remotes, args) && rc_start(t)) fixture_play_test(t, e, remotes);
  stop_remotes(t, remotes, e->fixture->remote_count);
}

static void fixture_play_test(rc_test_t *t, const entry_t *e, fake_remote_t *const *remotes) {
  /* The registry skipped the test when the profile lacks a channel the fixture needs. */
  char *metrics_url = NULL, *http_url = NULL;
  if ((e->fixture->needs & FIXTURE_NEEDS_METRICS) &&
      (metrics_url = rc_expand(t, "metrics.url", t->profile->metrics_url, NULL, 0)) == NULL)
    return;
  if ((e->fixture->needs & FIXTURE_NEEDS_SUT_HTTP) &&
      (http_url = rc_expand(t, "http.url", t->profile->http_url, NULL, 0)) == NULL) {
    free(metrics_url);
    return;
  }
  pg_observer_t *db = NULL;
  if ((e->fixture->needs & FIXTURE_NEEDS_DB) && (db = db_observe(t)) == NULL) {
    free(metrics_url);
    free(http_url);
    return;
  }
  fixture_env_t env = {
      .mock = t->mock,
      .vars = {.server_name = t->server_name, .instance_name = t->profile->instance_name},
      .log_path = t->log_file,
      .metrics_url = metrics_url,
      .http_url = http_url,
      .remotes = remotes,
      .remote_count = e->fixture->remote_count,
      .db_sample = db != NULL ? db_sample : NULL,
      .db_arg = db,
      .terminate = terminate_sut,
      .terminate_arg = t};
  fixture_result_t r;
  fixture_play(e->fixture, &env, &r);
  pg_observer_destroy(db);
  free(metrics_url);
  free(http_url);
  if (r.outcome != FIXTURE_PASSED) {
    rc_note(t, "Fixture steps (%zu of %zu passed):\n%s", r.steps_passed, r.steps_total,
            r.trace ? r.trace : "");
    /* The message names the step too: a summary line alone must say what failed. */
    if (r.outcome == FIXTURE_FAILED)
      rc_fail(t, r.expected ? r.expected : e->shown, "%s [at %.300s]", r.actual ? r.actual : "",
              r.expected ? r.expected : e->shown);
    else
      rc_error(t, "%s: %s", r.expected ? r.expected : e->shown, r.actual ? r.actual : "");
  }
  fixture_result_clear(&r);
}

/* ---- loading -------------------------------------------------------------------------- */

static int add_entry(const char *path, const char *shown, const char *rel) {
  if (entry_count == MAX_FIXTURES) return -1;
  entry_t *grown = realloc(entries, (entry_count + 1) * sizeof *grown);
  if (grown == NULL) return -1;
  entries = grown;
  entry_t *e = &entries[entry_count];
  memset(e, 0, sizeof *e);
  size_t n = strlen(rel) - strlen(".fixture");
  if (asprintf(&e->id, "fixtures/%.*s", (int)n, rel) < 0) e->id = NULL;
  e->shown = strdup(shown);
  e->path = strdup(path);
  if (e->id == NULL || e->shown == NULL || e->path == NULL) {
    free(e->id);
    free(e->shown);
    free(e->path);
    return -1;
  }
  entry_count++;
  rc_error_t err;
  fixture_t *fx = fixture_load(path, shown, &err);
  if (fx == NULL) {
    e->error = strdup(err.msg);
    return 0;
  }
  e->fixture = fx;
  char *roles = fx->roles ? strdup(fx->roles) : NULL;
  char *save = NULL;
  for (char *r = roles ? strtok_r(roles, ",", &save) : NULL; r; r = strtok_r(NULL, ",", &save)) {
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++)
      if (strcmp(ROLES[i].name, r) == 0) bit = ROLES[i].bit;
    if (bit == 0 && e->error == NULL &&
        asprintf(&e->error,
                 "%s:%d: field 'roles': unknown role '%s' (known: worker, fedsender, "
                 "presence_writer, sync, client, caches, pg)",
                 shown, fx->roles_line, r) < 0)
      e->error = NULL;
    e->roles |= bit;
  }
  free(roles);
  if (e->error != NULL) {
    fixture_destroy(e->fixture);
    e->fixture = NULL;
  }
  return 0;
}

static bool ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n > m && strcmp(s + n - m, tail) == 0;
}

/* Walks dir in name order; rel is the path below the root ("" at the root). */
static int walk(const char *dir, const char *shown_dir, const char *rel, int depth,
                rc_error_t *err) {
  struct dirent **names = NULL;
  int n = scandir(dir, &names, NULL, alphasort);
  if (n < 0) return rc_error_set(err, "fixtures directory %s: %s", shown_dir, strerror(errno));
  int rc = 0;
  for (int i = 0; i < n; i++) {
    const char *name = names[i]->d_name;
    char *path = NULL, *shown = NULL, *sub = NULL;
    if (rc != 0 || name[0] == '.' || asprintf(&path, "%s/%s", dir, name) < 0 ||
        asprintf(&shown, "%s/%s", shown_dir, name) < 0 ||
        asprintf(&sub, "%s%s%s", rel, rel[0] ? "/" : "", name) < 0) {
      free(path);
      free(shown);
      free(names[i]);
      continue;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
      if (depth < MAX_DEPTH) rc = walk(path, shown, sub, depth + 1, err);
    } else if (ends_with(name, ".fixture")) {
      if (add_entry(path, shown, sub) != 0)
        rc = rc_error_set(err, "fixtures directory %s: too many fixtures or out of memory",
                          shown_dir);
    }
    free(path);
    free(shown);
    free(sub);
    free(names[i]);
  }
  free(names);
  return rc;
}

static void fill_row(rc_test_def_t *row, const entry_t *e) {
  const fixture_t *f = e->fixture;
  *row = (rc_test_def_t){.id = e->id, .file = e->shown, .line = 1, .run = fixture_test};
  if (f == NULL) {
    /* Broken: it runs (and ends in ERROR) under every profile. */
    row->requirements = "-";
    row->level = RC_LEVEL_MUST;
    row->requirement = e->error ? e->error : "the fixture does not load";
    row->source = e->shown;
    row->dialects = RC_DIALECT_ALL;
    row->transports = RC_TRANSPORT_ALL;
    row->tags = "broken-fixture";
    return;
  }
  row->requirements = f->requirements;
  row->level = f->level == FIXTURE_LEVEL_SHOULD ? RC_LEVEL_SHOULD : RC_LEVEL_MUST;
  row->requirement = f->requirement;
  row->source = f->source;
  row->dialects = f->dialects; /* same bits: 1 << proto_dialect_t */
  row->transports = ((f->transports & FIXTURE_TRANSPORT_TCP) ? RC_TRANSPORT_TCP : 0) |
                    ((f->transports & FIXTURE_TRANSPORT_REDIS) ? RC_TRANSPORT_REDIS : 0);
  /* Fake remotes reach the SUT only through fedsender.remote_args; the database is the
   * test's own in the run's cluster. */
  row->roles = e->roles | ((f->needs & FIXTURE_NEEDS_REMOTES) ? PROFILE_ROLE_FEDSENDER : 0) |
               ((f->needs & FIXTURE_NEEDS_DB) ? PROFILE_ROLE_PG : 0);
  row->needs_paths = f->needs_paths;
  row->needs_caches = f->needs_caches;
  row->tags = f->tags;
  /* A profile without the channel skips the fixture, saying so ("not applicable: needs
   * the SUT's metrics; ..."), rather than passing it unchecked. */
  row->needs = ((f->needs & FIXTURE_NEEDS_METRICS) ? RC_NEEDS_METRICS : 0) |
               ((f->needs & FIXTURE_NEEDS_SUT_HTTP) ? RC_NEEDS_HTTP : 0);
}

int fixture_suite_load(const char *dir, const char *display_root, rc_error_t *err) {
  size_t before = entry_count;
  if (walk(dir, display_root ? display_root : dir, "", 0, err) != 0) return -1;
  size_t added = entry_count - before;
  rc_test_def_t *grown = realloc(rows, (entry_count ? entry_count : 1) * sizeof *grown);
  if (grown == NULL) return rc_error_set(err, "out of memory");
  rows = grown;
  for (size_t i = before; i < entry_count; i++) fill_row(&rows[i], &entries[i]);
  char why[512];
  if (added > 0 && registry_add_rows(rows + before, added, why, sizeof why) != 0)
    return rc_error_set(err, "fixtures directory %s: %s", display_root ? display_root : dir, why);
  return (int)added;
}

void fixture_suite_unload(void) {
  for (size_t i = 0; i < entry_count; i++) {
    free(entries[i].id);
    free(entries[i].shown);
    free(entries[i].path);
    free(entries[i].error);
    fixture_destroy(entries[i].fixture);
  }
  free(entries);
  free(rows);
  entries = NULL;
  rows = NULL;
  entry_count = 0;
}

const char *fixture_suite_default_dir(char *buf, size_t cap) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return NULL;
  exe[n] = '\0';
  char *dir = dirname(exe);
  char candidate[PATH_MAX + 32];
  const char *ups[] = {"/..", "/../..", "/../../.."};
  for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++) {
    snprintf(candidate, sizeof candidate, "%s%s/fixtures", dir, ups[i]);
    struct stat st;
    if (stat(candidate, &st) == 0 && S_ISDIR(st.st_mode)) {
      char *real = realpath(candidate, NULL);
      if (real == NULL) continue;
      snprintf(buf, cap, "%s", real);
      free(real);
      return buf;
    }
  }
  return NULL;
}

#include "fixture_record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture_write.h"
#include "rc_clock.h"
#include "testctx.h"

/* mkdir -p for the directories of path. */
static int make_parents(const char *path, rc_error_t *err) {
  char *copy = strdup(path);
  if (copy == NULL) return rc_error_set(err, "out of memory");
  for (char *p = copy + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
      int rc = rc_error_set(err, "cannot create %s: %s", copy, strerror(errno));
      free(copy);
      return rc;
    }
    *p = '/';
  }
  free(copy);
  return 0;
}

int fixture_record_test(rc_test_t *t, const char *dir, uint64_t end_seq, char *path, size_t cap,
                        rc_error_t *err) {
  const rc_test_def_t *def = t->def;
  snprintf(path, cap, "%s/%s.fixture", dir, def->id);
  if (make_parents(path, err) != 0) return -1;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *out = fopen(tmp, "w");
  if (out == NULL) return rc_error_set(err, "cannot write %s: %s", tmp, strerror(errno));

  char stamp[32] = "";
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm) != NULL) strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  char *comment = NULL, *source = NULL;
  if (asprintf(&comment,
               "Recorded by replcheck %s from test %s against '%s' (%s, %s) at %s.\n"
               "Replay: replcheck run --profile PROFILE --fixtures %s",
               REPLCHECK_VERSION, def->id, t->profile->name,
               proto_dialect_name(t->profile->dialect),
               profile_transport_name(t->profile->transport), stamp, dir) < 0)
    comment = NULL;
  if (asprintf(&source, "%s; recorded from %s", def->source, def->id) < 0) source = NULL;
  /* The mock's default streams need no `stream:` lines. */
  mockhs_config_t defaults;
  mockhs_config_defaults(&defaults, t->profile->dialect, t->server_name);
  bool default_streams = defaults.stream_count == t->mock_config.stream_count;
  for (size_t i = 0; default_streams && i < defaults.stream_count; i++)
    default_streams = strcmp(defaults.streams[i].name, t->mock_config.streams[i].name) == 0 &&
                      defaults.streams[i].position == t->mock_config.streams[i].position;
  fixture_write_options_t o = {
      .comment = comment,
      .requirements = def->requirements,
      .level = def->level == RC_LEVEL_SHOULD ? "SHOULD" : "MUST",
      .requirement = def->requirement,
      .source = source ? source : def->source,
      .tags = def->tags,
      .dialect = t->profile->dialect,
      .transport = profile_transport_name(t->profile->transport),
      .ping_interval_ms = t->mock_config.ping_interval_ms,
      .streams = default_streams ? NULL : t->mock_config.streams,
      .stream_count = t->mock_config.stream_count,
      .history = mockhs_history(t->mock),
      .server_name = t->server_name,
      .instance_name = t->profile->instance_name,
      .writer = t->mock_config.instance_name ? t->mock_config.instance_name : "master",
      .from_seq = 1,
      .to_seq = end_seq,
      .end_ns = rc_clock_mono_ns(),
  };
  int rc = fixture_write_ledger(out, mockhs_ledger(t->mock), &o, err);
  free(comment);
  free(source);
  if (fclose(out) != 0 && rc == 0)
    rc = rc_error_set(err, "cannot write %s: %s", tmp, strerror(errno));
  if (rc == 0 && rename(tmp, path) != 0)
    rc = rc_error_set(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  if (rc != 0) unlink(tmp);
  return rc;
}

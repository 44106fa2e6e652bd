/* http/server-header: the Server header on every response of the SUT's HTTP listener
 * (requirements.md §14, HT-01..HT-03; seed E, seed-behaviours.md §E).
 *
 * The requests: each of the profile's http.paths (default: a Synapse client listener's
 * JSON 200, /_matrix/client/versions), an unknown path (404) and an OPTIONS preflight.
 * The metrics endpoint is not requested: its Server header is a freedom (F-19). */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite_observe.h"
#include "suite_util.h"

#define MAX_PROBES 24
#define SNIPPET 120

static const char *const DEFAULT_PATHS[] = {"/_matrix/client/versions"};
static const char *const PREFLIGHT_HEADERS[] = {
    "Origin: https://replcheck.example.org", "Access-Control-Request-Method: GET",
    "Access-Control-Request-Headers: Authorization, Content-Type", NULL};

typedef struct probe {
  char label[300]; /* "GET /health (200)" */
  size_t servers;  /* how many Server headers */
  char value[256]; /* the first one ("" when none) */
} probe_t;

typedef struct probe_set {
  probe_t probes[MAX_PROBES];
  size_t count;
} probe_set_t;

static bool probe_one(rc_test_t *t, probe_set_t *set, const char *method, const char *path,
                      const char *const *headers) {
  if (set->count == MAX_PROBES) return true;
  http_response_t *r = suite_http(t, method, path, headers);
  if (r == NULL) return false;
  probe_t *p = &set->probes[set->count++];
  snprintf(p->label, sizeof p->label, "%s %.200s (%ld)", method, path, r->status);
  p->servers = http_response_header_count(r, "Server");
  const char *v = http_response_header(r, "Server", 0);
  snprintf(p->value, sizeof p->value, "%s", v ? v : "");
  http_response_destroy(r);
  return true;
}

/* One round of requests over every kind of response the suite looks at. */
static bool probe_round(rc_test_t *t, probe_set_t *set) {
  const profile_t *prof = t->profile;
  const char *const *paths =
      prof->http_path_count ? (const char *const *)prof->http_paths : DEFAULT_PATHS;
  size_t n = prof->http_path_count ? prof->http_path_count : 1;
  for (size_t i = 0; i < n; i++)
    if (!probe_one(t, set, "GET", paths[i], NULL)) return false;
  char unknown[96];
  snprintf(unknown, sizeof unknown, "/_replcheck/no-such-resource-%llx",
           (unsigned long long)t->seed);
  return probe_one(t, set, "GET", unknown, NULL) &&
         probe_one(t, set, "OPTIONS", paths[0], PREFLIGHT_HEADERS);
}

/* Starts the SUT and probes `rounds` times, with replication traffic in between. */
static bool probe_all(rc_test_t *t, probe_set_t *set, int rounds) {
  if (suite_start_connected(t) < 0) return false;
  for (int i = 0; i < rounds; i++) {
    if (i > 0) rc_observe(t, 300);
    if (!probe_round(t, set)) return false;
  }
  for (size_t i = 0; i < set->count; i++)
    rc_note(t, "%s: %zu Server header(s)%s%.*s%s", set->probes[i].label, set->probes[i].servers,
            set->probes[i].servers ? ", first '" : "", SNIPPET, set->probes[i].value,
            set->probes[i].servers ? "'" : "");
  return true;
}

/* Appends "; " + text to buf. */
static void append(char *buf, size_t cap, const char *text) {
  size_t at = strlen(buf);
  snprintf(buf + at, cap - at, "%s%s", at ? "; " : "", text);
}

/* HT-01: exactly one non-empty Server header on each response. */
static void server_header_present(rc_test_t *t) {
  probe_set_t set = {.count = 0};
  if (!probe_all(t, &set, 1)) return;
  char bad[2048] = "";
  for (size_t i = 0; i < set.count; i++) {
    const probe_t *p = &set.probes[i];
    char line[512];
    if (p->servers == 0)
      snprintf(line, sizeof line, "%s has no Server header", p->label);
    else if (p->servers > 1)
      snprintf(line, sizeof line, "%s has %zu Server headers", p->label, p->servers);
    else if (p->value[0] == '\0')
      snprintf(line, sizeof line, "%s has an empty Server header", p->label);
    else
      continue;
    append(bad, sizeof bad, line);
  }
  if (bad[0] != '\0')
    rc_fail(t,
            "exactly one non-empty Server header on every response (JSON, error, unknown path, "
            "OPTIONS preflight)",
            "%s", bad);
}

/* HT-02: the same value everywhere, never Twisted's default. */
static void server_header_consistent(rc_test_t *t) {
  probe_set_t set = {.count = 0};
  if (!probe_all(t, &set, 2)) return;
  const probe_t *first = NULL;
  for (size_t i = 0; i < set.count; i++) {
    const probe_t *p = &set.probes[i];
    if (p->servers == 0) continue; /* a missing header is HT-01's finding */
    if (strncmp(p->value, "TwistedWeb/", 11) == 0) {
      rc_fail(t, "a Server value that is not Twisted's default", "%s carries 'Server: %.*s'",
              p->label, SNIPPET, p->value);
      return;
    }
    if (first == NULL) {
      first = p;
    } else if (strcmp(first->value, p->value) != 0) {
      rc_fail(t, "the identical Server value on every response during the run",
              "'%.*s' on %s but '%.*s' on %s", SNIPPET, first->value, first->label, SNIPPET,
              p->value, p->label);
      return;
    }
  }
  if (first == NULL)
    rc_note(t, "no response carried a Server header (HT-01 reports that); nothing to compare");
}

typedef struct version_line {
  regex_t re;
  char version[128];
  char line[300];
} version_line_t;

static bool match_version_line(const sutlog_record_t *r, void *arg) {
  version_line_t *v = arg;
  regmatch_t m[3];
  if (regexec(&v->re, r->message, 3, m, 0) != 0) return false;
  int len = (int)(m[2].rm_eo - m[2].rm_so);
  snprintf(v->version, sizeof v->version, "%.*s", len, r->message + m[2].rm_so);
  snprintf(v->line, sizeof v->line, "%s: %.250s", r->level, r->message);
  return true;
}

/* HT-03: the product regex, and the version logged at startup. */
static void server_header_version(rc_test_t *t) {
  probe_set_t set = {.count = 0};
  if (!probe_all(t, &set, 1)) return;
  const probe_t *p = NULL;
  for (size_t i = 0; i < set.count && p == NULL; i++)
    if (set.probes[i].servers > 0) p = &set.probes[i];
  if (p == NULL) {
    rc_fail(t, "a Server header to check", "no response carried one");
    return;
  }
  const char *pattern =
      t->profile->server_header ? t->profile->server_header : PROFILE_DEFAULT_SERVER_HEADER_REGEX;
  regex_t re;
  if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
    rc_error(t, "cannot compile the server header regex /%s/", pattern);
    return;
  }
  bool matches = regexec(&re, p->value, 0, NULL, 0) == 0;
  regfree(&re);
  if (!matches) {
    rc_fail(t, "a Server value matching the profile's server_header_regex",
            "'%.*s' (on %s) does not match /%s/", SNIPPET, p->value, p->label, pattern);
    return;
  }
  /* "<product>/<version>[ (<git info>)]": the version is between the '/' and a blank. */
  const char *slash = strchr(p->value, '/');
  char header_version[128] = "";
  if (slash != NULL)
    snprintf(header_version, sizeof header_version, "%.*s", (int)strcspn(slash + 1, " "),
             slash + 1);
  version_line_t v = {.version = ""};
  if (regcomp(&v.re, "^Server (.+) version ([^ ]+)$", REG_EXTENDED) != 0) {
    rc_error(t, "cannot compile the startup line pattern");
    return;
  }
  long offset = 0;
  bool logged = suite_log_wait(t, &offset, 0, match_version_line, &v);
  regfree(&v.re);
  if (!logged)
    rc_fail(
        t,
        "the startup log line 'Server <argv0> version <version>' with the Server header's version",
        "no such line in %s (Server header '%.*s')", t->log_file, SNIPPET, p->value);
  else if (strcmp(v.version, header_version) != 0)
    rc_fail(t, "the version in the Server header equals the one logged at startup",
            "the header says '%.*s' (version '%s') but the log says '%s' (%s)", SNIPPET, p->value,
            header_version, v.version, v.line);
}

#define HTTP_ROW(...)                                                                             \
  RC_TEST_ROW(.dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL, .needs = RC_NEEDS_HTTP, \
              __VA_ARGS__)

const rc_test_def_t http_server_header_tests[] = {
    HTTP_ROW(.id = "http/server-header/present", .requirements = "HT-01", .level = RC_LEVEL_MUST,
             .requirement =
                 "Every response of the worker's HTTP listener (JSON, error, unknown path, "
                 "OPTIONS preflight) carries exactly one non-empty Server header.",
             .source = "synapse PR #3208 (v0.29.0) SynapseRequest.render; seed-behaviours.md §E",
             .run = server_header_present),
    HTTP_ROW(.id = "http/server-header/consistent", .requirements = "HT-02", .level = RC_LEVEL_MUST,
             .requirement = "The Server value is identical on all responses during a run and never "
                            "starts with TwistedWeb/.",
             .source =
                 "synapse PR #3208 (v0.29.0); reference/README (same value on every listener)",
             .run = server_header_consistent),
    HTTP_ROW(.id = "http/server-header/version", .requirements = "HT-03", .level = RC_LEVEL_SHOULD,
             .requirement =
                 "The Server value matches the profile's product pattern (Synapse/<version>"
                 "[ (<git info>)] by default) and its version is the one logged at startup "
                 "as 'Server <argv0> version <version>'.",
             .source = "synapse util/versionstring.py@v0.29.0; config/logger.py@v0.33.3; "
                       "reference/synapse-1.66/worker2.log",
             .run = server_header_version),
};
const size_t http_server_header_test_count =
    sizeof http_server_header_tests / sizeof http_server_header_tests[0];

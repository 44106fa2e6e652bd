/* Unit tests of harness/profile.c: loading, validation messages, placeholder expansion
 * and opt-out matching. Contract: harness/profile.h; format: docs/PROFILES.md.
 *
 * Profile texts below are written with single quotes so the JSON stays readable in C
 * string literals; write_profile() turns every ' into " before writing the file. */
#include <check.h>
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profile.h"
#include "test_support.h"

static char *tmp_dir;

static void setup(void) {
  tmp_dir = test_make_temp_dir("rc-profile");
  ck_assert_msg(tmp_dir != NULL, "cannot create a temporary directory");
}

static void teardown(void) {
  test_remove_tree(tmp_dir);
  free(tmp_dir);
  tmp_dir = NULL;
}

/* Writes text verbatim to <dir>/<name>; returns the malloc'd path. */
static char *write_raw(const char *dir, const char *name, const char *text) {
  char *path = test_path(dir, name);
  ck_assert_ptr_nonnull(path);
  ck_assert_msg(test_write_file(path, text, strlen(text)) == 0, "cannot write %s", path);
  return path;
}

/* Writes a profile (single quotes become double quotes); returns the malloc'd path. */
static char *write_profile(const char *name, const char *text) {
  char *json = strdup(text);
  ck_assert_ptr_nonnull(json);
  for (char *c = json; *c != '\0'; c++) {
    if (*c == '\'') *c = '"';
  }
  char *path = write_raw(tmp_dir, name, json);
  free(json);
  return path;
}

static profile_t *load_ok(const char *text) {
  char *path = write_profile("ok.json", text);
  rc_error_t err = {{0}};
  profile_t *profile = profile_load(path, &err);
  ck_assert_msg(profile != NULL, "profile should load, got: %s", err.msg);
  free(path);
  return profile;
}

static void assert_contains(const char *message, const char *fragment, const char *context) {
  ck_assert_msg(strstr(message, fragment) != NULL,
                "%s\n  Expected the message to contain: %s\n  Actual message: %s", context,
                fragment, message);
}

#define HEAD_NO_COMMAND "{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.66'"
#define MIN_HEAD HEAD_NO_COMMAND ", 'command': ['w']"
#define WITH(extra) MIN_HEAD ", " extra "}"

/* ---------------------------------------------------------------------------------
 * Valid profiles */

static const char FULL_PROFILE[] =
    "{\n"
    "  'format': 1,\n"
    "  'name': 'refworker (modern, TCP)',\n"
    "  'description': 'the reference worker',\n"
    "  'dialect': 'modern',\n"
    "  'transport': 'tcp',\n"
    "  'era': '1.66.0',\n"
    "  'instance_name': 'worker7',\n"
    "  'roles': ['worker', 'fedsender', 'presence_writer', 'sync', 'client', 'caches', 'pg'],\n"
    "  'command': ['{bin_dir}/refworker', '--port', '{repl_port}', '', '{{x}}'],\n"
    "  'env': {'RC_B': '{work_dir}/b', 'RC_A': 'a', 'RC_EMPTY': ''},\n"
    "  'config_template': {'source': 'worker.yaml.in', 'output': '{work_dir}/worker.yaml'},\n"
    "  'readiness': {'kind': 'log', 'pattern': 'listening on port {sut_http_port}$'},\n"
    "  'log': {'path': '{log_path}', 'format': 'json-lines', 'context_field': 'ctx'},\n"
    "  'metrics': {'url': 'http://127.0.0.1:{sut_http_port}/metrics'},\n"
    "  'http': {'url': 'http://127.0.0.1:{sut_http_port}', 'server_header_regex': '^refworker/[0-9]+',\n"
    "           'paths': ['/health', '/_refworker/fail']},\n"
    "  'caches': [{'name': 'device_updates', 'expiry_ms': 1000, 'max_len': 5, 'reset_on_get': true,\n"
    "              'insert': {'stream': 'device_lists', 'row': '[\\'@u{n}:{server_name}\\',false]',\n"
    "                         'key': '@u{n}:{server_name}'},\n"
    "              'read_url': 'http://127.0.0.1:{sut_http_port}/cache/device_updates/{key}'},\n"
    "             {'name': 'forever', 'expiry_ms': 0, 'max_len': 0,\n"
    "              'insert': {'stream': 'caches', 'row': '[{n}, {{}}]'}}],\n"
    "  'fedsender': {'remote_args': ['--remote', '{remote_name}={remote_url}', '--x={server_name}']},\n"
    "  'client': {'users': [{'user_id': '@alice:test', 'access_token': 'tok_a', 'device_id': 'DEV'},\n"
    "                       {'user_id': '@bob:test', 'access_token': 'tok_b'}],\n"
    "             'user_args': ['--user', '{user_id}={access_token}', '--port={sut_http_port}']},\n"
    "  'timing': {'ping_interval_ms': 200, 'ping_timeout_ms': 1000, 'reconnect_initial_ms': 10,\n"
    "             'reconnect_max_ms': 50, 'startup_timeout_ms': 3000, 'shutdown_grace_ms': 700,\n"
    "             'federation_delivery_ms': 1500},\n"
    "  'opt_out': [{'test': 'protocol/keepalive/*', 'reason': 'no keepalive yet'},\n"
    "              {'test': 'http/server-header', 'reason': 'no HTTP'}]\n"
    "}\n";

START_TEST(test_full_profile) {
  char *template_path = write_raw(tmp_dir, "worker.yaml.in", "name: {instance_name}\n");
  profile_t *p = load_ok(FULL_PROFILE);
  char *real_dir = realpath(tmp_dir, NULL);
  ck_assert_ptr_nonnull(real_dir);
  ck_assert_str_eq(p->dir, real_dir);
  ck_assert_str_eq(p->name, "refworker (modern, TCP)");
  ck_assert_str_eq(p->description, "the reference worker");
  ck_assert_int_eq(p->dialect, PROTO_DIALECT_MODERN);
  ck_assert_int_eq(p->transport, PROFILE_TRANSPORT_TCP);
  ck_assert_str_eq(p->era, "1.66.0");
  ck_assert_int_eq(p->era_major, 1);
  ck_assert_int_eq(p->era_minor, 66);
  ck_assert_int_eq(p->era_patch, 0);
  ck_assert_str_eq(p->instance_name, "worker7");
  ck_assert_uint_eq(p->roles, PROFILE_ROLE_WORKER | PROFILE_ROLE_FEDSENDER |
                                  PROFILE_ROLE_PRESENCE_WRITER | PROFILE_ROLE_SYNC |
                                  PROFILE_ROLE_CLIENT | PROFILE_ROLE_CACHES | PROFILE_ROLE_PG);
  ck_assert_uint_eq(p->command_count, 5);
  ck_assert_str_eq(p->command[0], "{bin_dir}/refworker");
  ck_assert_str_eq(p->command[2], "{repl_port}");
  ck_assert_str_eq(p->command[3], "");
  ck_assert_str_eq(p->command[4], "{{x}}");
  ck_assert_ptr_null(p->command[5]);
  /* env keeps the file's order: the SUT sees variables as the profile lists them. */
  ck_assert_uint_eq(p->env_count, 3);
  ck_assert_str_eq(p->env_names[0], "RC_B");
  ck_assert_str_eq(p->env_values[0], "{work_dir}/b");
  ck_assert_str_eq(p->env_names[1], "RC_A");
  ck_assert_str_eq(p->env_names[2], "RC_EMPTY");
  ck_assert_str_eq(p->env_values[2], "");
  ck_assert_str_eq(p->config_template, template_path); /* tmp_dir has no braces */
  ck_assert_str_eq(p->config_output, "{work_dir}/worker.yaml");
  ck_assert_int_eq(p->readiness_kind, PROFILE_READY_LOG);
  ck_assert_str_eq(p->readiness_pattern, "listening on port {sut_http_port}$");
  ck_assert_str_eq(p->log_path, "{log_path}");
  ck_assert_int_eq(p->log_format, PROFILE_LOG_JSON_LINES);
  ck_assert_str_eq(p->log_context_field, "ctx");
  ck_assert_str_eq(p->metrics_url, "http://127.0.0.1:{sut_http_port}/metrics");
  ck_assert_str_eq(p->server_header, "^refworker/[0-9]+");
  ck_assert_str_eq(p->http_url, "http://127.0.0.1:{sut_http_port}");
  ck_assert_uint_eq(p->http_path_count, 2);
  ck_assert_str_eq(p->http_paths[0], "/health");
  ck_assert_str_eq(p->http_paths[1], "/_refworker/fail");
  ck_assert_uint_eq(p->remote_arg_count, 3);
  ck_assert_str_eq(p->remote_args[1], "{remote_name}={remote_url}");
  ck_assert_ptr_null(p->remote_args[3]);
  ck_assert_uint_eq(p->user_count, 2);
  ck_assert_str_eq(p->users[0].user_id, "@alice:test");
  ck_assert_str_eq(p->users[0].access_token, "tok_a");
  ck_assert_str_eq(p->users[0].device_id, "DEV");
  ck_assert_str_eq(p->users[1].user_id, "@bob:test");
  ck_assert_ptr_null(p->users[1].device_id);
  ck_assert_uint_eq(p->user_arg_count, 3);
  ck_assert_str_eq(p->user_args[1], "{user_id}={access_token}");
  ck_assert_ptr_null(p->user_args[3]);
  ck_assert_uint_eq(p->cache_count, 2);
  const profile_cache_t *c = &p->caches[0];
  ck_assert_str_eq(c->name, "device_updates");
  ck_assert_int_eq(c->expiry_ms, 1000);
  ck_assert_int_eq(c->max_len, 5);
  ck_assert(c->reset_on_get);
  ck_assert_str_eq(c->insert_stream, "device_lists");
  ck_assert_str_eq(c->insert_row, "[\"@u{n}:{server_name}\",false]");
  ck_assert_str_eq(c->insert_key, "@u{n}:{server_name}");
  ck_assert_str_eq(c->read_url, "http://127.0.0.1:{sut_http_port}/cache/device_updates/{key}");
  c = &p->caches[1];
  ck_assert_str_eq(c->name, "forever");
  ck_assert_int_eq(c->expiry_ms, 0);
  ck_assert_int_eq(c->max_len, 0);
  ck_assert(!c->reset_on_get);
  ck_assert_str_eq(c->insert_row, "[{n}, {{}}]");
  ck_assert_ptr_null(c->insert_key);
  ck_assert_ptr_null(c->read_url);
  /* A row template expands like every template, {n} from the caller. */
  const profile_var_t vars[] = {{"n", "7"}, {"server_name", "hs.test"}};
  rc_error_t err;
  char *row = profile_expand(p->caches[0].insert_row, vars, 2, &err);
  ck_assert_str_eq(row, "[\"@u7:hs.test\",false]");
  free(row);
  row = profile_expand(p->caches[1].insert_row, vars, 2, &err);
  ck_assert_str_eq(row, "[7, {}]");
  free(row);
  ck_assert_int_eq(p->timing.ping_interval_ms, 200);
  ck_assert_int_eq(p->timing.ping_timeout_ms, 1000);
  ck_assert_int_eq(p->timing.reconnect_initial_ms, 10);
  ck_assert_int_eq(p->timing.reconnect_max_ms, 50);
  ck_assert_int_eq(p->timing.startup_timeout_ms, 3000);
  ck_assert_int_eq(p->timing.shutdown_grace_ms, 700);
  ck_assert_int_eq(p->timing.federation_delivery_ms, 1500);
  ck_assert_uint_eq(p->opt_out_count, 2);
  ck_assert_str_eq(p->opt_outs[1].pattern, "http/server-header");
  ck_assert_str_eq(p->opt_outs[1].reason, "no HTTP");
  profile_destroy(p);
  free(real_dir);
  free(template_path);
}
END_TEST

START_TEST(test_minimal_profile_gets_defaults) {
  profile_t *p = load_ok(MIN_HEAD "}");
  ck_assert_str_eq(p->name, "n");
  ck_assert_ptr_null(p->description);
  ck_assert_int_eq(p->dialect, PROTO_DIALECT_MODERN);
  ck_assert_int_eq(p->transport, PROFILE_TRANSPORT_TCP);
  ck_assert_str_eq(profile_transport_name(p->transport), "tcp");
  ck_assert_int_eq(p->era_patch, 0);
  ck_assert_str_eq(p->instance_name, "worker1");
  ck_assert_uint_eq(p->roles, PROFILE_ROLE_WORKER);
  ck_assert_uint_eq(p->command_count, 1);
  ck_assert_uint_eq(p->env_count, 0);
  ck_assert_ptr_null(p->config_template);
  ck_assert_ptr_null(p->config_output);
  ck_assert_int_eq(p->readiness_kind, PROFILE_READY_CONNECT);
  ck_assert_ptr_null(p->readiness_pattern);
  ck_assert_ptr_null(p->log_path);
  ck_assert_int_eq(p->log_format, PROFILE_LOG_SYNAPSE_TEXT);
  ck_assert_str_eq(p->log_context_field, "request");
  ck_assert_ptr_null(p->metrics_url);
  ck_assert_ptr_null(p->server_header);
  ck_assert_ptr_null(p->http_url);
  ck_assert_uint_eq(p->http_path_count, 0);
  ck_assert_ptr_null(p->http_paths);
  ck_assert_uint_eq(p->cache_count, 0);
  ck_assert_ptr_null(p->caches);
  ck_assert_uint_eq(p->remote_arg_count, 0);
  ck_assert_ptr_null(p->remote_args);
  /* Synapse v1.8-v1.66 over TCP (replication-protocol.md §3.1, §3.4). */
  ck_assert_int_eq(p->timing.ping_interval_ms, 5000);
  ck_assert_int_eq(p->timing.ping_timeout_ms, 25000);
  ck_assert_int_eq(p->timing.reconnect_initial_ms, 100);
  ck_assert_int_eq(p->timing.reconnect_max_ms, 1000);
  ck_assert_int_eq(p->timing.startup_timeout_ms, 10000);
  ck_assert_int_eq(p->timing.shutdown_grace_ms, 5000);
  ck_assert_int_eq(p->timing.federation_delivery_ms, 5000); /* PR-01's 5 s */
  ck_assert_uint_eq(p->opt_out_count, 0);
  ck_assert_ptr_null(profile_opt_out_reason(p, "protocol/handshake/ping"));
  ck_assert_int_eq(p->db_pool_max, 10); /* Synapse's cp_max */
  ck_assert_int_eq(p->db_schema, PROFILE_DB_SCHEMA_REFWORKER);
  profile_destroy(p);

  p = load_ok("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.66', 'command': ['w'],"
              " 'roles': ['worker', 'pg'], 'database': {'pool_max': 3}}");
  ck_assert_uint_eq(p->roles, PROFILE_ROLE_WORKER | PROFILE_ROLE_PG);
  ck_assert_int_eq(p->db_pool_max, 3);
  ck_assert_int_eq(p->db_schema, PROFILE_DB_SCHEMA_REFWORKER);
  profile_destroy(p);

  p = load_ok("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.66', 'command': ['w'],"
              " 'roles': ['worker', 'pg'], 'database': {'schema': 'none'}}");
  ck_assert_int_eq(p->db_schema, PROFILE_DB_SCHEMA_NONE);
  ck_assert_int_eq(p->db_pool_max, 10);
  profile_destroy(p);
  p = load_ok("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.66', 'command': ['w'],"
              " 'roles': ['worker', 'pg'], 'database': {'schema': 'refworker'}}");
  ck_assert_int_eq(p->db_schema, PROFILE_DB_SCHEMA_REFWORKER);
  profile_destroy(p);
}
END_TEST

/* Reconnect defaults follow the declared era and transport, as Synapse's did. */
START_TEST(test_timing_defaults_follow_era) {
  profile_t *p = load_ok(
      "{'format': 1, 'name': 'n', 'dialect': '2018', 'era': '1.7.1',"
      " 'command': ['w']}");
  ck_assert_int_eq(p->dialect, PROTO_DIALECT_2018);
  ck_assert_int_eq(p->era_minor, 7);
  ck_assert_int_eq(p->era_patch, 1);
  ck_assert_int_eq(p->timing.reconnect_initial_ms, 1000);
  ck_assert_int_eq(p->timing.reconnect_max_ms, 5000);
  profile_destroy(p);

  p = load_ok("{'format': 1, 'name': 'n', 'dialect': '2018', 'era': '1.8', 'command': ['w']}");
  ck_assert_int_eq(p->timing.reconnect_initial_ms, 100);
  ck_assert_int_eq(p->timing.reconnect_max_ms, 1000);
  profile_destroy(p);

  p = load_ok(
      "{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.67',"
      " 'transport': 'redis', 'command': ['w'], 'timing': {'ping_interval_ms': 7}}");
  ck_assert_int_eq(p->transport, PROFILE_TRANSPORT_REDIS);
  ck_assert_str_eq(profile_transport_name(p->transport), "redis");
  ck_assert_int_eq(p->timing.ping_interval_ms, 7);
  ck_assert_int_eq(p->timing.ping_timeout_ms, 25000);
  ck_assert_int_eq(p->timing.reconnect_initial_ms, 1000);
  ck_assert_int_eq(p->timing.reconnect_max_ms, 5000);
  profile_destroy(p);

  p = load_ok(
      "{'format': 1, 'name': 'n', 'dialect': '2018', 'era': '0.33.6', 'command': ['w'],"
      " 'timing': {'reconnect_max_ms': 3600000, 'reconnect_initial_ms': 1}}");
  ck_assert_int_eq(p->era_major, 0);
  ck_assert_int_eq(p->era_minor, 33);
  ck_assert_int_eq(p->era_patch, 6);
  ck_assert_int_eq(p->timing.reconnect_initial_ms, 1);
  ck_assert_int_eq(p->timing.reconnect_max_ms, 3600000);
  profile_destroy(p);
}
END_TEST

START_TEST(test_config_template_paths) {
  /* A source starting with a placeholder or '/' is kept; it is not read at load. */
  profile_t *p = load_ok(WITH("'config_template': {'source': '{bin_dir}/w.in', 'output': 'o'}"));
  ck_assert_str_eq(p->config_template, "{bin_dir}/w.in");
  profile_destroy(p);
  char *absolute = write_raw(tmp_dir, "abs.in", "port: {repl_port} {{literal}}\n");
  char text[1024];
  snprintf(text, sizeof text, WITH("'config_template': {'source': '%s', 'output': 'o'}"), absolute);
  p = load_ok(text);
  ck_assert_str_eq(p->config_template, absolute);
  profile_destroy(p);
  free(absolute);

  /* The profile's directory is part of a template, so braces in it are escaped. */
  char *odd_dir = test_path(tmp_dir, "we{ir}d");
  ck_assert_int_eq(mkdir(odd_dir, 0700), 0);
  char *source = write_raw(odd_dir, "w.yaml.in", "name: {instance_name}\n");
  char *path = write_raw(odd_dir, "p.json",
                         "{\"format\": 1, \"name\": \"n\", \"dialect\": \"modern\", \"era\": "
                         "\"1.66\", \"command\": [\"w\"], \"config_template\": {\"source\": "
                         "\"w.yaml.in\", \"output\": \"{work_dir}/w.yaml\"}}");
  rc_error_t err = {{0}};
  p = profile_load(path, &err);
  ck_assert_msg(p != NULL, "load failed: %s", err.msg);
  ck_assert_ptr_nonnull(strstr(p->config_template, "we{{ir}}d/w.yaml.in"));
  char *expanded = profile_expand(p->config_template, NULL, 0, &err);
  ck_assert_msg(expanded != NULL, "expand failed: %s", err.msg);
  ck_assert_str_eq(expanded, source);
  free(expanded);
  profile_destroy(p);
  free(path);
  free(source);
  free(odd_dir);
}
END_TEST

/* {profile_dir} is used by a SUT running elsewhere, so dir is absolute even when the
 * profile was named relative to the current directory. */
START_TEST(test_relative_path_gives_absolute_dir) {
  char *path = write_profile("rel.json", MIN_HEAD "}");
  char cwd[PATH_MAX];
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  ck_assert_int_eq(chdir(tmp_dir), 0);
  rc_error_t err = {{0}};
  profile_t *p = profile_load("rel.json", &err);
  ck_assert_int_eq(chdir(cwd), 0);
  ck_assert_msg(p != NULL, "load failed: %s", err.msg);
  char *real_dir = realpath(tmp_dir, NULL);
  ck_assert_str_eq(p->path, "rel.json");
  ck_assert_str_eq(p->dir, real_dir);
  free(real_dir);
  profile_destroy(p);
  free(path);
}
END_TEST

/* ---------------------------------------------------------------------------------
 * Every error path: the message starts with the file, names the field and says what
 * was expected (and, where useful, what was found). */

typedef struct error_case {
  const char *json;
  const char *fragments[4];
  const char *extra_file; /* written into the temp dir first, if set */
  const char *extra_text;
} error_case_t;

#define INSERT "{'stream': 'device_lists', 'row': '[\\'@u{n}:t\\']'}"
#define CACHE "{'name': 'c', 'expiry_ms': 10, 'max_len': 0, 'insert': " INSERT "}"
#define FEDSENDER(obj) WITH("'roles': ['worker', 'fedsender'], 'fedsender': " obj)
#define CLIENT(obj) WITH("'roles': ['worker', 'sync'], 'client': " obj)
#define USER(extra) "{'user_id': '@a:t', 'access_token': 'tok'" extra "}"
#define CACHES(list) WITH("'roles': ['worker', 'caches'], 'caches': " list)
#define ERR(json, ...) \
  { json, {__VA_ARGS__}, NULL, NULL }
#define ERR_WITH_FILE(file, text, json, ...) \
  { json, {__VA_ARGS__}, file, text }

static const error_case_t ERROR_CASES[] = {
    /* syntax and shape */
    ERR("{'format': 1,\n  'name': }", ":2:", "JSON syntax error:"),
    ERR("{'format': 1, 'format': 1}", ":1:", "JSON syntax error:", "duplicate"),
    ERR("", "JSON syntax error:"),
    ERR("[1, 2]", "expected a JSON object at the top level, got array"),
    ERR(WITH("'comand': ['w']"), "unknown top-level key 'comand'",
        "(known: format, name, description, dialect", "opt_out, setup, positions, database, client)"),
    /* database (role pg) */
    ERR(WITH("'database': 3"), "field 'database': expected an object"),
    ERR(WITH("'database': {'pool_max': 0}"), "field 'database.pool_max': expected an integer in 1..1000"),
    ERR(WITH("'database': {'pool_max': '2'}"), "field 'database.pool_max'"),
    ERR(WITH("'database': {'poolmax': 2}"),
        "field 'database.poolmax': unknown field (known: pool_max, schema)"),
    ERR(WITH("'roles': ['worker', 'pg'], 'database': {'schema': 'synapse'}"),
        "field 'database.schema': expected \"refworker\" or \"none\""),
    ERR(WITH("'roles': ['worker', 'pg'], 'database': {'schema': 1}"),
        "field 'database.schema': expected \"refworker\" or \"none\""),
    ERR(WITH("'database': {'schema': 'none'}"),
        "field 'database.schema': needs role \"pg\" in 'roles'"),
    /* format, name, description */
    ERR("{'name': 'n', 'dialect': 'modern', 'era': '1.66', 'command': ['w']}",
        "field 'format': missing, expected the integer 1"),
    ERR("{'format': 2}", "field 'format': unsupported format version 2"),
    ERR("{'format': '1'}", "field 'format': expected the integer 1, got string"),
    ERR("{'format': 1, 'dialect': 'modern', 'era': '1.66', 'command': ['w']}",
        "field 'name': missing, expected a non-empty string"),
    ERR("{'format': 1, 'name': ''}", "field 'name': expected a non-empty string, got \"\""),
    ERR("{'format': 1, 'name': 5}", "field 'name': expected a non-empty string, got integer"),
    ERR(WITH("'description': 5"), "field 'description': expected a string, got integer"),
    /* dialect, transport, era and their consistency */
    ERR("{'format': 1, 'name': 'n', 'era': '1.66', 'command': ['w']}",
        "field 'dialect': missing, expected \"2018\" or \"modern\""),
    ERR("{'format': 1, 'name': 'n', 'dialect': '2019'}",
        "field 'dialect': expected \"2018\" or \"modern\", got \"2019\""),
    ERR("{'format': 1, 'name': 'n', 'dialect': 2018}", "field 'dialect'", "got integer"),
    ERR(WITH("'transport': 'udp'"),
        "field 'transport': expected \"tcp\" or \"redis\", got \"udp\""),
    ERR(WITH("'transport': true"), "field 'transport'", "got boolean"),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'command': ['w']}",
        "field 'era': missing"),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': 1.66}",
        "field 'era': expected a non-empty string, got real"),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': 'v1.66'}",
        "field 'era': expected a version \"MAJOR.MINOR[.PATCH]\"", "got \"v1.66\""),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1'}", "field 'era'", "got \"1\""),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.66.0.1'}", "field 'era'"),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1..2'}", "field 'era'"),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.66rc1'}", "field 'era'"),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.9999999999'}", "field 'era'"),
    ERR("{'format': 1, 'name': 'n', 'dialect': '2018', 'era': '1.12', 'transport': 'redis'}",
        "field 'transport'", "needs dialect \"modern\""),
    ERR("{'format': 1, 'name': 'n', 'dialect': '2018', 'era': '1.66'}", "field 'era'",
        "modern dialect", "'dialect' is \"2018\""),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.12.4'}", "field 'era'",
        "2018 dialect", "'dialect' is \"modern\""),
    ERR("{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.67'}", "field 'era'",
        "no direct TCP replication", "'transport' is \"tcp\""),
    /* instance_name and roles */
    ERR(WITH("'instance_name': ''"), "field 'instance_name': expected a non-empty string"),
    ERR(WITH("'instance_name': 'worker 1'"), "field 'instance_name': must not contain spaces"),
    ERR(WITH("'instance_name': 'w\\t1'"), "field 'instance_name': must not contain spaces"),
    ERR(WITH("'instance_name': 5"), "field 'instance_name'", "got integer"),
    ERR(WITH("'roles': 'worker'"), "field 'roles': expected an array of role names, got string"),
    ERR(WITH("'roles': []"), "field 'roles': expected at least one role", "known: worker"),
    ERR(WITH("'roles': ['fedsendr']"), "field 'roles[0]': unknown role 'fedsendr'",
        "(known: worker, fedsender, presence_writer, sync, client, caches, pg)"),
    ERR(WITH("'roles': ['worker', 1]"), "field 'roles[1]': expected a role name, got integer"),
    ERR(WITH("'roles': ['sync', 'sync']"), "field 'roles[1]': role 'sync' is listed twice"),
    /* command and env */
    ERR(HEAD_NO_COMMAND "}", "field 'command': missing, expected a non-empty array of strings"),
    ERR(HEAD_NO_COMMAND ", 'command': []}", "field 'command'", "got an empty array"),
    ERR(HEAD_NO_COMMAND ", 'command': 'w'}", "field 'command'", "got string"),
    ERR(HEAD_NO_COMMAND ", 'command': [1]}", "field 'command[0]'", "got integer"),
    ERR(HEAD_NO_COMMAND ", 'command': ['']}", "field 'command[0]'", "got \"\""),
    ERR(HEAD_NO_COMMAND ", 'command': ['w', null]}",
        "field 'command[1]': expected a string, got null"),
    ERR(HEAD_NO_COMMAND ", 'command': ['w', '--port', '{rep_port}']}",
        "field 'command[2]': unknown placeholder '{rep_port}'",
        "(known: repl_host, repl_port, http_url,", "db_user, env:NAME)"),
    ERR(HEAD_NO_COMMAND ", 'command': ['w', '--port={repl_port']}",
        "field 'command[1]': unclosed '{' at offset 7", "'{{'"),
    ERR(HEAD_NO_COMMAND ", 'command': ['w', '{repl_{port}}']}",
        "field 'command[1]': unclosed '{' at offset 0"),
    ERR(HEAD_NO_COMMAND ", 'command': ['w', 'a}b']}", "field 'command[1]': stray '}' at offset 1",
        "'}}'"),
    ERR(HEAD_NO_COMMAND ", 'command': ['{}']}", "field 'command[0]': unknown placeholder '{}'"),
    ERR(WITH("'env': ['A=1']"), "field 'env': expected an object, got array"),
    ERR(WITH("'env': {'1X': 'a'}"), "field 'env.1X': not a valid environment variable name"),
    ERR(WITH("'env': {'A-B': 'a'}"), "field 'env.A-B': not a valid environment variable name"),
    ERR(WITH("'env': {'': 'a'}"), "field 'env.': not a valid environment variable name"),
    ERR(WITH("'env': {'A': 5}"), "field 'env.A': expected a string, got integer"),
    ERR(WITH("'env': {'A': 'x', 'B': '{nope}'}"), "field 'env.B': unknown placeholder '{nope}'"),
    /* config_template */
    ERR(WITH("'config_template': 'w.in'"),
        "field 'config_template': expected an object, got string"),
    ERR(WITH("'config_template': {}"), "field 'config_template.source': missing"),
    ERR(WITH("'config_template': {'source': '{bin_dir}/w'}"),
        "field 'config_template.output': missing"),
    ERR(WITH("'config_template': {'source': 'w', 'output': 'o', 'mode': 1}"),
        "field 'config_template': unknown key 'mode' (known: source, output)"),
    ERR(WITH("'config_template': {'source': 'missing.in', 'output': 'o'}"),
        "field 'config_template.source': ", "/missing.in: No such file or directory"),
    ERR_WITH_FILE(
        "bad.in", "a: {repl_host}\nb: {{not}}\nc: {worker_port}\n",
        WITH("'config_template': {'source': 'bad.in', 'output': 'o'}"),
        "field 'config_template.source': ", "/bad.in:3: unknown placeholder '{worker_port}'"),
    ERR_WITH_FILE("bad.in", "a: 1\nlisteners: [{port: 8}]\n",
                  WITH("'config_template': {'source': 'bad.in', 'output': 'o'}"),
                  "/bad.in:2: unknown placeholder '{port: 8}'"),
    ERR_WITH_FILE("bad.in", "a: {repl_host\n",
                  WITH("'config_template': {'source': 'bad.in', 'output': 'o'}"),
                  "/bad.in:1: unclosed '{' at offset 3"),
    ERR(WITH("'config_template': {'source': '{bindir}/w', 'output': 'o'}"),
        "field 'config_template.source': unknown placeholder '{bindir}'"),
    ERR(WITH("'config_template': {'source': '{bin_dir}/w', 'output': '{out}'}"),
        "field 'config_template.output': unknown placeholder '{out}'"),
    /* readiness */
    ERR(WITH("'readiness': 'log'"), "field 'readiness': expected an object, got string"),
    ERR(WITH("'readiness': {}"),
        "field 'readiness.kind': missing, expected \"connect\" or \"log\""),
    ERR(WITH("'readiness': {'kind': 'tcp'}"),
        "field 'readiness.kind': expected \"connect\" or \"log\", got \"tcp\""),
    ERR(WITH("'readiness': {'kind': 'log'}"), "field 'readiness.pattern': missing"),
    ERR(WITH("'readiness': {'kind': 'connect', 'pattern': 'x'}"),
        "field 'readiness.pattern': only meaningful with kind \"log\""),
    ERR(WITH("'readiness': {'kind': 'log', 'pattern': 'ready (on'}"),
        "field 'readiness.pattern': invalid POSIX extended regular expression \"ready (on\""),
    ERR(WITH("'readiness': {'kind': 'log', 'pattern': 'port {rep_port}'}"),
        "field 'readiness.pattern': unknown placeholder '{rep_port}'"),
    /* regex repetition braces must be doubled, or they read as placeholders */
    ERR(WITH("'readiness': {'kind': 'log', 'pattern': 'a{2}'}"),
        "field 'readiness.pattern': unknown placeholder '{2}'"),
    ERR(WITH("'readiness': {'kind': 'log', 'pattern': 'x', 'timeout': 1}"),
        "field 'readiness': unknown key 'timeout' (known: kind, pattern)"),
    /* log */
    ERR(WITH("'log': {'format': 'xml'}"),
        "field 'log.format': expected \"synapse-text\" or \"json-lines\", got \"xml\""),
    ERR(WITH("'log': {'path': '{logpath}'}"), "field 'log.path': unknown placeholder '{logpath}'"),
    ERR(WITH("'log': {'path': ''}"), "field 'log.path': expected a non-empty string, got \"\""),
    ERR(WITH("'log': {'context_field': 'request'}"),
        "field 'log.context_field': only meaningful with format \"json-lines\""),
    ERR(WITH("'log': {'file': 'x'}"), "field 'log': unknown key 'file' (known: path, format"),
    /* metrics and http */
    ERR(WITH("'metrics': 'http://x/metrics'"), "field 'metrics': expected an object, got string"),
    ERR(WITH("'metrics': {}"), "field 'metrics.url': missing"),
    ERR(WITH("'metrics': {'url': 'ftp://x/metrics'}"),
        "field 'metrics.url': expected an http:// or https:// URL, got \"ftp://x/metrics\""),
    ERR(WITH("'metrics': {'url': 'http://127.0.0.1:{sut_port}/metrics'}"),
        "field 'metrics.url': unknown placeholder '{sut_port}'"),
    ERR(WITH("'http': {}"),
        "field 'http': expected at least one of 'url' and 'server_header_regex'"),
    ERR(WITH("'http': {'server_header_regex': '^(ref'}"),
        "field 'http.server_header_regex': invalid POSIX extended regular expression"),
    ERR(WITH("'http': {'server_header': 'x'}"),
        "field 'http': unknown key 'server_header' (known: url, server_header_regex, paths)"),
    ERR(WITH("'http': {'server_header_regex': 'x', 'paths': ['/a']}"),
        "field 'http.paths': only meaningful with http.url"),
    ERR(WITH("'http': {'url': 'http://h', 'paths': []}"),
        "field 'http.paths': expected a non-empty array of paths, got an empty array"),
    ERR(WITH("'http': {'url': 'http://h', 'paths': '/a'}"),
        "field 'http.paths': expected a non-empty array of paths, got string"),
    ERR(WITH("'http': {'url': 'http://h', 'paths': ['/a', 'b']}"),
        "field 'http.paths[1]': expected a path starting with '/' and without blanks, got \"b\""),
    ERR(WITH("'http': {'url': 'http://h', 'paths': ['/a b']}"),
        "field 'http.paths[0]': expected a path starting with '/' and without blanks"),
    ERR(WITH("'http': {'url': 'http://h', 'paths': [1]}"),
        "field 'http.paths[0]': expected a non-empty string, got integer"),
    ERR(WITH("'http': {'url': 'ftp://h'}"),
        "field 'http.url': expected an http:// or https:// URL, got \"ftp://h\""),
    ERR(WITH("'http': {'url': 'http://h:{port}'}"), "field 'http.url': unknown placeholder '{port}'"),
    ERR(WITH("'http': {'url': 3}"), "field 'http.url': expected a non-empty string, got integer"),
    /* fedsender */
    ERR(WITH("'roles': ['fedsender']"),
        "field 'fedsender': missing: role \"fedsender\" needs {\"remote_args\": [...]}"),
    ERR(WITH("'fedsender': {'remote_args': ['{remote_name}={remote_url}']}"),
        "field 'fedsender': only meaningful with role \"fedsender\""),
    ERR(FEDSENDER("[]"), "field 'fedsender': expected an object, got array"),
    ERR(FEDSENDER("{'args': []}"), "field 'fedsender': unknown key 'args' (known: remote_args)"),
    ERR(FEDSENDER("{}"),
        "field 'fedsender.remote_args': missing, expected a non-empty array of argument templates"),
    ERR(FEDSENDER("{'remote_args': []}"),
        "field 'fedsender.remote_args': expected a non-empty array of argument templates, got an "
        "empty array"),
    ERR(FEDSENDER("{'remote_args': ['--remote', 7]}"),
        "field 'fedsender.remote_args[1]': expected a string, got integer"),
    ERR(FEDSENDER("{'remote_args': ['--remote={remote_name}={remote_host}']}"),
        "field 'fedsender.remote_args[0]': unknown placeholder '{remote_host}'",
        "remote_name, remote_url"),
    ERR(FEDSENDER("{'remote_args': ['--remote', '{remote_name}={{remote_url}}']}"),
        "field 'fedsender.remote_args': must use {remote_url}"),
    ERR(WITH("'http': {'url': 'http://h/{remote_url}'}"),
        "field 'http.url': unknown placeholder '{remote_url}'"),
    /* client (roles sync, client) */
    ERR(WITH("'roles': ['worker', 'client']"),
        "field 'client': missing: roles \"sync\" and \"client\" need {\"users\": [...]}"),
    ERR(WITH("'client': {'users': [" USER("") "]}"),
        "field 'client': only meaningful with role \"sync\" or \"client\""),
    ERR(CLIENT("[]"), "field 'client': expected an object, got array"),
    ERR(CLIENT("{'users': [" USER("") "], 'args': []}"),
        "field 'client': unknown key 'args' (known: users, user_args)"),
    ERR(CLIENT("{}"), "field 'client.users': missing, expected a non-empty array of users"),
    ERR(CLIENT("{'users': []}"),
        "field 'client.users': expected a non-empty array of users, got an empty array"),
    ERR(CLIENT("{'users': ['@a:t']}"), "field 'client.users[0]': expected an object, got string"),
    ERR(CLIENT("{'users': [{'access_token': 'tok'}]}"),
        "field 'client.users[0].user_id': missing, expected a non-empty string"),
    ERR(CLIENT("{'users': [{'user_id': 'alice', 'access_token': 'tok'}]}"),
        "field 'client.users[0].user_id': expected a Matrix user id '@local:server', got 'alice'"),
    ERR(CLIENT("{'users': [{'user_id': '@a:t'}]}"),
        "field 'client.users[0].access_token': missing, expected a non-empty string"),
    ERR(CLIENT("{'users': [" USER("") ", {'user_id': '@b:t', 'access_token': 'tok'}]}"),
        "field 'client.users[1].access_token': the same token as client.users[0]"),
    ERR(CLIENT("{'users': [{'user_id': '@a:t', 'access_token': 'a b'}]}"),
        "field 'client.users[0].access_token': must be printable ASCII without blanks, got 'a b'"),
    ERR(CLIENT("{'users': [" USER(", 'device_id': ''") "]}"),
        "field 'client.users[0].device_id': must not be empty"),
    ERR(CLIENT("{'users': [" USER(", 'devid': 'D'") "]}"),
        "field 'client.users[0]': unknown key 'devid' (known: user_id, access_token, device_id)"),
    ERR(CLIENT("{'users': [" USER("") "], 'user_args': []}"),
        "field 'client.user_args': expected a non-empty array of argument templates, got an "
        "empty array"),
    ERR(CLIENT("{'users': [" USER("") "], 'user_args': ['--user', '{user}']}"),
        "field 'client.user_args[1]': unknown placeholder '{user}'",
        "user_id, access_token, device_id"),
    ERR(CLIENT("{'users': [" USER("") "], 'user_args': ['--user', '{user_id}={device_id}']}"),
        "field 'client.user_args': uses {device_id} but client.users[0] has no device_id"),
    /* caches */
    ERR(WITH("'roles': ['worker', 'caches']"),
        "field 'caches': missing: role \"caches\" needs the list of the SUT's expiring caches"),
    ERR(WITH("'caches': [" CACHE "]"), "field 'caches': only meaningful with role \"caches\""),
    ERR(CACHES("[]"), "field 'caches': expected a non-empty array of cache objects, got an empty array"),
    ERR(CACHES("{}"), "field 'caches': expected a non-empty array of cache objects, got object"),
    ERR(CACHES("[3]"), "field 'caches[0]': expected an object describing a cache, got integer"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': " INSERT ", 'ttl': 1}]"),
        "field 'caches[0]': unknown key 'ttl' (known: name, expiry_ms, max_len, reset_on_get,"),
    ERR(CACHES("[{'expiry_ms': 1, 'max_len': 0, 'insert': " INSERT "}]"),
        "field 'caches[0].name': missing"),
    ERR(CACHES("[{'name': 'a b', 'expiry_ms': 1, 'max_len': 0, 'insert': " INSERT "}]"),
        "field 'caches[0].name': must not contain blanks, quotes or control characters, got \"a b\""),
    ERR(CACHES("[{'name': 'c', 'max_len': 0, 'insert': " INSERT "}]"),
        "field 'caches[0].expiry_ms': missing, expected an integer in 0..3600000"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': -1, 'max_len': 0, 'insert': " INSERT "}]"),
        "field 'caches[0].expiry_ms': expected an integer in 0..3600000, got -1"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': '5', 'max_len': 0, 'insert': " INSERT "}]"),
        "field 'caches[0].expiry_ms': expected an integer in 0..3600000, got string"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 100001, 'insert': " INSERT "}]"),
        "field 'caches[0].max_len': expected an integer in 0..100000, got 100001"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'reset_on_get': 1, 'insert': " INSERT "}]"),
        "field 'caches[0].reset_on_get': expected true or false, got integer"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0}]"),
        "field 'caches[0].insert': missing, expected {\"stream\": ..., \"row\": ...}"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': []}]"),
        "field 'caches[0].insert': expected an object, got array"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': {'row': '[{n}]'}}]"),
        "field 'caches[0].insert.stream': missing"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': {'stream': 'a b', 'row': '[{n}]'}}]"),
        "field 'caches[0].insert.stream': a stream name has no blanks, got \"a b\""),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': {'stream': 's', 'row': '[1]'}}]"),
        "field 'caches[0].insert.row': must contain {n} (the insert counter)"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': {'stream': 's', 'row': '[{{n}}]'}}]"),
        "field 'caches[0].insert.row': must contain {n}"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': {'stream': 's', 'row': '[{m}]'}}]"),
        "field 'caches[0].insert.row': unknown placeholder '{m}' (known: repl_host,", ", n)"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': {'stream': 's', 'row': '[{n},'}}]"),
        "field 'caches[0].insert.row': not valid JSON once {n} is filled in (\"[0,\")"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': {'stream': 's', 'row': '[{n}]', 'key': 'k'}}]"),
        "field 'caches[0].insert.key': must contain {n}"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': {'stream': 's', 'row': '[{n}]', 'kind': 1}}]"),
        "field 'caches[0].insert': unknown key 'kind' (known: stream, row, key)"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': " INSERT ", 'read_url': 'http://h/{key}'}]"),
        "field 'caches[0].read_url': needs caches[0].insert.key"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': " INSERT ", 'read_url': 'http://h/x'}]"),
        "field 'caches[0].read_url': must contain {key}"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': " INSERT ", 'read_url': 'h/{key}'}]"),
        "field 'caches[0].read_url': expected an http:// or https:// URL"),
    ERR(CACHES("[{'name': 'c', 'expiry_ms': 1, 'max_len': 0, 'insert': " INSERT ", 'read_url': 'http://h/{n}'}]"),
        "field 'caches[0].read_url': unknown placeholder '{n}'", ", key)"),
    ERR(CACHES("[" CACHE ", " CACHE "]"), "field 'caches[1].name': \"c\" is already caches[0]"),
    /* timing */
    ERR(WITH("'timing': 5"), "field 'timing': expected an object, got integer"),
    ERR(WITH("'timing': {'ping_interval_ms': '5000'}"),
        "field 'timing.ping_interval_ms': expected a positive integer, got string"),
    ERR(WITH("'timing': {'ping_timeout_ms': 0}"),
        "field 'timing.ping_timeout_ms': expected an integer in 1..3600000", "got 0"),
    ERR(WITH("'timing': {'reconnect_max_ms': -5}"), "field 'timing.reconnect_max_ms'", "got -5"),
    ERR(WITH("'timing': {'startup_timeout_ms': 3600001}"), "field 'timing.startup_timeout_ms'",
        "got 3600001"),
    ERR(WITH("'timing': {'shutdown_grace_ms': 1.5}"),
        "field 'timing.shutdown_grace_ms': expected a positive integer, got real"),
    ERR(WITH("'timing': {'ping_interval': 5}"),
        "field 'timing': unknown key 'ping_interval' (known: ping_interval_ms, ping_timeout_ms,"),
    ERR(WITH("'timing': {'reconnect_initial_ms': 2000}"), "field 'timing.reconnect_initial_ms'",
        "(2000) must not exceed reconnect_max_ms (1000)"),
    ERR(WITH("'timing': {'reconnect_max_ms': 50}"), "field 'timing.reconnect_max_ms'",
        "(100, the era's default) must not exceed"),
    /* opt_out */
    ERR(WITH("'opt_out': {}"), "field 'opt_out': expected an array", "got object"),
    ERR(WITH("'opt_out': ['protocol/*']"), "field 'opt_out[0]': expected an object", "got string"),
    ERR(WITH("'opt_out': [{'reason': 'r'}]"), "field 'opt_out[0].test': missing"),
    ERR(WITH("'opt_out': [{'test': 'a', 'reason': ''}]"),
        "field 'opt_out[0].reason': expected a non-empty string, got \"\""),
    ERR(WITH("'opt_out': [{'test': 'a', 'reason': 'r'}, {'test': 'b'}]"),
        "field 'opt_out[1].reason': missing"),
    ERR(WITH("'opt_out': [{'test': 'a', 'reason': 'r', 'why': 1}]"),
        "field 'opt_out[0]': unknown key 'why' (known: test, reason)"),
    /* setup */
    ERR(WITH("'setup': []"), "field 'setup': expected an object, got array"),
    ERR(WITH("'setup': {}"), "field 'setup.command': expected a non-empty array of strings, got nothing"),
    ERR(WITH("'setup': {'command': []}"), "field 'setup.command': expected a non-empty array", "an empty array"),
    ERR(WITH("'setup': {'command': ['']}"), "field 'setup.command[0]': expected a non-empty string"),
    ERR(WITH("'setup': {'command': ['x'], 'when': 1}"),
        "field 'setup': unknown key 'when' (known: command, per, timeout_ms, stop_on, config_template)"),
    ERR(WITH("'setup': {'command': ['x'], 'per': 'suite'}"),
        "field 'setup.per': expected \"run\" or \"test\", got \"suite\""),
    ERR(WITH("'setup': {'command': ['x', '{repl_port}']}"),
        "field 'setup.command[1]': placeholder '{repl_port}' has no value here",
        "(a setup with \"per\": \"run\" runs before the mock exists)"),
    ERR(WITH("'setup': {'command': ['x', '{rep}'], 'per': 'test'}"),
        "field 'setup.command[1]': unknown placeholder '{rep}'"),
    ERR(WITH("'setup': {'command': ['x'], 'stop_on': '('}"),
        "field 'setup.stop_on': invalid POSIX extended regular expression"),
    ERR(WITH("'setup': {'command': ['x'], 'stop_on': 'port {sut_http_port}'}"),
        "field 'setup.stop_on': placeholder '{sut_http_port}' has no value here"),
    ERR(WITH("'setup': {'command': ['x'], 'timeout_ms': 0}"),
        "field 'setup.timeout_ms': expected an integer in 1..3600000 (milliseconds)"),
    ERR(WITH("'setup': {'command': ['x'], 'config_template': {'source': 'none.in'}}"),
        "field 'setup.config_template.output': missing"),
    ERR(WITH("'setup': {'command': ['x'], 'config_template': {'source': 'none.in', 'output': 'o'}}"),
        "field 'setup.config_template.source':", "none.in: No such file or directory"),
    /* positions */
    ERR(WITH("'positions': [1]"), "field 'positions': expected an object, got array"),
    ERR(WITH("'positions': {'a b': 1}"), "field 'positions.a b': a stream name has no blanks"),
    ERR(WITH("'positions': {'caches': -1}"),
        "field 'positions.caches': expected a non-negative integer (the stream token), got a negative integer"),
    ERR(WITH("'positions': {'caches': '1'}"), "field 'positions.caches': expected a non-negative integer", "got string"),
    /* {env:NAME} */
    ERR(WITH("'env': {'A': '{env:}'}"), "field 'env.A': unknown placeholder '{env:}'", "env:NAME)"),
    ERR(WITH("'env': {'A': '{env:1X}'}"), "field 'env.A': unknown placeholder '{env:1X}'"),
};

START_TEST(test_error_messages) {
  const error_case_t *c = &ERROR_CASES[_i];
  if (c->extra_file != NULL) free(write_raw(tmp_dir, c->extra_file, c->extra_text));
  char name[32];
  snprintf(name, sizeof name, "case%d.json", _i);
  char *path = write_profile(name, c->json);
  rc_error_t err = {{0}};
  profile_t *p = profile_load(path, &err);
  char context[2048];
  snprintf(context, sizeof context,
           "Requirement: an invalid profile is refused, naming file, "
           "field and expectation (case %d: %s)",
           _i, c->json);
  ck_assert_msg(p == NULL, "%s\n  Expected: load fails\n  Actual: it loaded", context);
  ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0 && err.msg[strlen(path)] == ':',
                "%s\n  Expected the message to start with '%s:'\n  Actual message: %s", context,
                path, err.msg);
  for (size_t f = 0; f < 4 && c->fragments[f] != NULL; f++)
    assert_contains(err.msg, c->fragments[f], context);
  free(path);
}
END_TEST

START_TEST(test_file_errors) {
  rc_error_t err = {{0}};
  char *missing = test_path(tmp_dir, "nope.json");
  ck_assert_ptr_null(profile_load(missing, &err));
  char expected[1024];
  snprintf(expected, sizeof expected, "%s: No such file or directory", missing);
  ck_assert_str_eq(err.msg, expected);
  free(missing);

  ck_assert_ptr_null(profile_load(tmp_dir, &err));
  snprintf(expected, sizeof expected, "%s: Is a directory", tmp_dir);
  ck_assert_str_eq(err.msg, expected);

  ck_assert_ptr_null(profile_load("", &err));
  assert_contains(err.msg, "no profile path", "empty path");
  ck_assert_ptr_null(profile_load(NULL, &err));
  assert_contains(err.msg, "no profile path", "NULL path");
  ck_assert_ptr_null(profile_load(tmp_dir, NULL)); /* err is optional */
}
END_TEST

/* ---------------------------------------------------------------------------------
 * Expansion */

START_TEST(test_expand_every_placeholder) {
  static const char *const expected_names[] = {
      "repl_host",   "repl_port",     "http_url",   "http_port",   "sut_http_port",
      "log_path",    "work_dir",      "db_dsn",     "server_name", "bin_dir",
      "profile_dir", "instance_name", "redis_host", "redis_port",  "db_host",
      "db_port",     "db_name",       "db_user",    NULL,
  };
  size_t count = 0;
  while (PROFILE_PLACEHOLDERS[count] != NULL) count++;
  for (size_t i = 0; expected_names[i] != NULL; i++) {
    ck_assert_uint_lt(i, count);
    ck_assert_str_eq(PROFILE_PLACEHOLDERS[i], expected_names[i]);
  }
  ck_assert_uint_eq(count, sizeof expected_names / sizeof expected_names[0] - 1);

  profile_var_t vars[32];
  char values[32][48];
  char template_text[1024] = "", want[2048] = "";
  for (size_t i = 0; i < count; i++) {
    snprintf(values[i], sizeof values[i], "<%s=%zu>", PROFILE_PLACEHOLDERS[i], i);
    vars[i] = (profile_var_t){.name = PROFILE_PLACEHOLDERS[i], .value = values[i]};
    size_t used = strlen(template_text);
    snprintf(template_text + used, sizeof template_text - used, "-{%s}", PROFILE_PLACEHOLDERS[i]);
    used = strlen(want);
    snprintf(want + used, sizeof want - used, "-%s", values[i]);
  }
  rc_error_t err = {{0}};
  char *out = profile_expand(template_text, vars, count, &err);
  ck_assert_msg(out != NULL, "expand failed: %s", err.msg);
  ck_assert_str_eq(out, want);
  free(out);
}
END_TEST

START_TEST(test_expand_braces_and_adjacency) {
  const profile_var_t vars[] = {
      {"repl_host", "127.0.0.1"},
      {"repl_port", "8008"},
      {"work_dir", "/w/{not_a_placeholder}"},
      {"repl_port", "shadowed"},
  };
  const struct {
    const char *in, *out;
  } cases[] = {
      {"", ""},
      {"plain text", "plain text"},
      {"{repl_host}{repl_port}", "127.0.0.18008"},
      {"{repl_host}:{repl_port}", "127.0.0.1:8008"},
      {"{{literal}}", "{literal}"},
      {"{{{repl_port}}}", "{8008}"},
      {"a}}b{{c", "a}b{c"},
      {"x{{}}y", "x{}y"},
      /* values are inserted as they are, never expanded again */
      {"{work_dir}/log", "/w/{not_a_placeholder}/log"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rc_error_t err = {{0}};
    char *out = profile_expand(cases[i].in, vars, 4, &err);
    ck_assert_msg(out != NULL, "'%s' failed: %s", cases[i].in, err.msg);
    ck_assert_msg(strcmp(out, cases[i].out) == 0, "'%s'\n  Expected: '%s'\n  Actual: '%s'",
                  cases[i].in, cases[i].out, out);
    free(out);
  }
}
END_TEST

START_TEST(test_expand_errors) {
  const profile_var_t vars[] = {{"repl_port", "8008"}, {"db_dsn", NULL}};
  rc_error_t err = {{0}};
  ck_assert_ptr_null(profile_expand("dsn={db_dsn}", vars, 2, &err));
  assert_contains(err.msg, "placeholder '{db_dsn}' has no value here (values given: repl_port)",
                  "missing value");
  ck_assert_ptr_null(profile_expand("{server_name}", NULL, 0, &err));
  assert_contains(err.msg, "placeholder '{server_name}' has no value here (values given: none)",
                  "no vars at all");
  ck_assert_ptr_null(profile_expand("{rep_port}", vars, 2, &err));
  assert_contains(err.msg, "unknown placeholder '{rep_port}' (known: repl_host", "unknown");
  ck_assert_ptr_null(profile_expand("ab{repl_port", vars, 2, &err));
  assert_contains(err.msg, "unclosed '{' at offset 2", "unclosed");
  ck_assert_ptr_null(profile_expand("}", vars, 2, &err));
  assert_contains(err.msg, "stray '}' at offset 0", "stray");
  ck_assert_ptr_null(profile_expand(NULL, vars, 2, &err));
  assert_contains(err.msg, "no template", "NULL template");
  ck_assert_ptr_null(profile_expand("{x}", vars, 2, NULL)); /* err is optional */
}
END_TEST

/* {env:NAME} takes the harness's environment; unset or empty is an error naming it. */
START_TEST(test_expand_env) {
  rc_error_t err = {{0}};
  setenv("RC_TEST_PY", "/opt/py/bin/python3", 1);
  char *out = profile_expand("{env:RC_TEST_PY} -m x {{env:RC_TEST_PY}}", NULL, 0, &err);
  ck_assert_msg(out != NULL, "expansion failed: %s", err.msg);
  ck_assert_str_eq(out, "/opt/py/bin/python3 -m x {env:RC_TEST_PY}");
  free(out);
  unsetenv("RC_TEST_PY");
  ck_assert_ptr_null(profile_expand("{env:RC_TEST_PY}", NULL, 0, &err));
  assert_contains(err.msg, "placeholder '{env:RC_TEST_PY}': environment variable RC_TEST_PY is not set",
                  "unset variable");
  setenv("RC_TEST_PY", "", 1);
  ck_assert_ptr_null(profile_expand("{env:RC_TEST_PY}", NULL, 0, &err));
  assert_contains(err.msg, "RC_TEST_PY is not set", "empty variable");
  unsetenv("RC_TEST_PY");
}
END_TEST

/* A setup loads with its defaults; a per-run setup may use the database placeholders. */
START_TEST(test_setup_loads) {
  free(write_raw(tmp_dir, "setup.yaml.in", "db: {db_host}:{db_port}/{db_name} as {db_user}\n"));
  profile_t *p = load_ok(WITH("'setup': {'command': ['{env:PY}', '{db_dsn}', '{work_dir}'], "
                              "'config_template': {'source': 'setup.yaml.in', 'output': '{work_dir}/s.yaml'}}"));
  ck_assert_uint_eq(p->setup.command_count, 3);
  ck_assert_str_eq(p->setup.command[1], "{db_dsn}");
  ck_assert(!p->setup.per_test);
  ck_assert_int_eq(p->setup.timeout_ms, PROFILE_SETUP_DEFAULT_TIMEOUT_MS);
  ck_assert_ptr_null(p->setup.stop_on);
  ck_assert_ptr_nonnull(strstr(p->setup.config_template, "/setup.yaml.in"));
  ck_assert_str_eq(p->setup.config_output, "{work_dir}/s.yaml");
  profile_destroy(p);
  p = load_ok(WITH("'setup': {'command': ['x', '{repl_port}'], 'per': 'test', 'timeout_ms': 5, "
                   "'stop_on': 'ready on {sut_http_port}$'}"));
  ck_assert(p->setup.per_test);
  ck_assert_int_eq(p->setup.timeout_ms, 5);
  ck_assert_str_eq(p->setup.stop_on, "ready on {sut_http_port}$");
  profile_destroy(p);
  p = load_ok(MIN_HEAD "}");
  ck_assert_ptr_null(p->setup.command);
  ck_assert_uint_eq(p->position_count, 0);
  profile_destroy(p);
  p = load_ok(WITH("'positions': {'caches': 1, 'events': 9007199254740993}"));
  ck_assert_uint_eq(p->position_count, 2);
  ck_assert_str_eq(p->positions[0].stream, "caches");
  ck_assert_int_eq(p->positions[0].position, 1);
  ck_assert_int_eq(p->positions[1].position, 9007199254740993LL);
  profile_destroy(p);
}
END_TEST

/* ---------------------------------------------------------------------------------
 * Opt-outs and small things */

START_TEST(test_opt_out_matching) {
  profile_t *p =
      load_ok(WITH("'opt_out': [{'test': 'protocol/keepalive/*', 'reason': 'no keepalive'},"
                   " {'test': 'presence/once', 'reason': 'exact'},"
                   " {'test': 'cache/[ab]?', 'reason': 'set'},"
                   " {'test': '*', 'reason': 'catch-all'}]"));
  ck_assert_str_eq(profile_opt_out_reason(p, "protocol/keepalive/ping-timeout"), "no keepalive");
  ck_assert_str_eq(profile_opt_out_reason(p, "protocol/keepalive/a/b"), "no keepalive");
  ck_assert_str_eq(profile_opt_out_reason(p, "presence/once"), "exact");
  ck_assert_str_eq(profile_opt_out_reason(p, "cache/b1"), "set");
  /* first match wins: everything else falls to the catch-all */
  ck_assert_str_eq(profile_opt_out_reason(p, "presence/once-more"), "catch-all");
  ck_assert_str_eq(profile_opt_out_reason(p, "cache/c1"), "catch-all");
  ck_assert_ptr_null(profile_opt_out_reason(p, NULL));
  profile_destroy(p);

  p = load_ok(WITH("'opt_out': [{'test': 'protocol/*', 'reason': 'r'}]"));
  ck_assert_str_eq(profile_opt_out_reason(p, "protocol/handshake/name"), "r");
  ck_assert_ptr_null(profile_opt_out_reason(p, "protocolx"));
  ck_assert_ptr_null(profile_opt_out_reason(p, "presence/once"));
  profile_destroy(p);
  ck_assert_ptr_null(profile_opt_out_reason(NULL, "protocol/x"));
}
END_TEST

START_TEST(test_destroy_null_and_names) {
  profile_destroy(NULL);
  ck_assert_str_eq(profile_transport_name(PROFILE_TRANSPORT_TCP), "tcp");
  ck_assert_str_eq(profile_transport_name(PROFILE_TRANSPORT_REDIS), "redis");
  ck_assert_str_eq(profile_transport_name((profile_transport_t)0), "unknown");
}
END_TEST

/* The worked examples in docs/PROFILES.md must load: each ```json block preceded by a
 * "<!-- example: NAME -->" line is written to NAME (other fenced blocks after such a
 * marker, e.g. a config template, likewise) and every .json one is loaded. */
START_TEST(test_docs_examples_load) {
  char *doc_path = test_path(test_env("REPLCHECK_SOURCE_DIR"), "docs/PROFILES.md");
  char *doc = test_read_file(doc_path, NULL);
  ck_assert_msg(doc != NULL, "cannot read %s", doc_path);
  char *json_names[8];
  int examples = 0;
  for (char *mark = strstr(doc, "<!-- example: "); mark != NULL;
       mark = strstr(mark + 1, "<!-- example: ")) {
    char name[64];
    ck_assert_int_eq(sscanf(mark, "<!-- example: %63s -->", name), 1);
    char *fence = strstr(mark, "```");
    ck_assert_ptr_nonnull(fence);
    char *body = strchr(fence, '\n');
    ck_assert_ptr_nonnull(body);
    body++;
    char *end = strstr(body, "```");
    ck_assert_ptr_nonnull(end);
    char saved = *end;
    *end = '\0';
    char *path = write_raw(tmp_dir, name, body);
    *end = saved;
    if (strstr(name, ".json") != NULL && examples < 8)
      json_names[examples++] = path;
    else
      free(path);
  }
  ck_assert_int_ge(examples, 2);
  bool compared = false;
  for (int i = 0; i < examples; i++) {
    rc_error_t err = {{0}};
    profile_t *p = profile_load(json_names[i], &err);
    ck_assert_msg(p != NULL, "docs example %s does not load: %s", json_names[i], err.msg);
    profile_destroy(p);
    /* The worked example says it is the shipped profile: it must stay that. */
    if (strstr(json_names[i], "/refworker.json") != NULL) {
      char *shipped = test_path(test_env("REPLCHECK_SOURCE_DIR"), "profiles/refworker.json");
      json_t *a = json_load_file(json_names[i], 0, NULL), *b = json_load_file(shipped, 0, NULL);
      ck_assert_msg(a != NULL && b != NULL && json_equal(a, b),
                    "the refworker.json example in docs/PROFILES.md differs from %s", shipped);
      json_decref(a);
      json_decref(b);
      free(shipped);
      compared = true;
    }
    free(json_names[i]);
  }
  ck_assert_msg(compared, "docs/PROFILES.md has no refworker.json example");
  free(doc);
  free(doc_path);
}
END_TEST

/* The profiles shipped in profiles/ are what users start from: each must load. */
START_TEST(test_bundled_profiles_load) {
  char *pattern = test_path(test_env("REPLCHECK_SOURCE_DIR"), "profiles/*.json");
  glob_t found;
  int rc = glob(pattern, 0, NULL, &found);
  ck_assert_msg(rc == 0 || rc == GLOB_NOMATCH, "glob(%s) failed", pattern);
  for (size_t i = 0; rc == 0 && i < found.gl_pathc; i++) {
    rc_error_t err = {{0}};
    profile_t *p = profile_load(found.gl_pathv[i], &err);
    ck_assert_msg(p != NULL, "bundled profile does not load: %s", err.msg);
    profile_destroy(p);
  }
  if (rc == 0) globfree(&found);
  free(pattern);
}
END_TEST

static Suite *profile_suite(void) {
  Suite *s = suite_create("profile");
  TCase *load = tcase_create("load");
  tcase_add_checked_fixture(load, setup, teardown);
  tcase_add_test(load, test_full_profile);
  tcase_add_test(load, test_minimal_profile_gets_defaults);
  tcase_add_test(load, test_timing_defaults_follow_era);
  tcase_add_test(load, test_config_template_paths);
  tcase_add_test(load, test_relative_path_gives_absolute_dir);
  tcase_add_test(load, test_file_errors);
  tcase_add_test(load, test_opt_out_matching);
  tcase_add_test(load, test_docs_examples_load);
  tcase_add_test(load, test_bundled_profiles_load);
  tcase_add_test(load, test_setup_loads);
  suite_add_tcase(s, load);

  TCase *errors = tcase_create("errors");
  tcase_add_checked_fixture(errors, setup, teardown);
  tcase_add_loop_test(errors, test_error_messages, 0,
                      (int)(sizeof ERROR_CASES / sizeof ERROR_CASES[0]));
  suite_add_tcase(s, errors);

  TCase *expand = tcase_create("expand");
  tcase_add_test(expand, test_expand_every_placeholder);
  tcase_add_test(expand, test_expand_braces_and_adjacency);
  tcase_add_test(expand, test_expand_errors);
  tcase_add_test(expand, test_expand_env);
  tcase_add_test(expand, test_destroy_null_and_names);
  suite_add_tcase(s, expand);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(profile_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

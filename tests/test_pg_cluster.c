/* pg_cluster (harness/pg_cluster.h): a real PostgreSQL 15 cluster is created, started on
 * a loopback port, answers as the harness's superuser and as the SUT role, makes test
 * databases from the template, and is gone (process and directory) after stop; as root
 * its server runs as the `postgres` user. Missing binaries give an error naming the
 * path and the package. With an empty template (PG_CLUSTER_SCHEMA_NONE) the SUT role
 * fills it and each test database is a copy. */
#include <check.h>
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg_cluster.h"
#include "test_support.h"

/* Runs one query as whoever dsn names and returns the first value (malloc'd), or NULL. */
static char *query_one(const char *dsn, const char *sql) {
  PGconn *conn = PQconnectdb(dsn);
  char *out = NULL;
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
      out = strdup(PQgetvalue(res, 0, 0));
    else
      fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(conn));
    PQclear(res);
  } else {
    fprintf(stderr, "connect %s: %s\n", dsn, PQerrorMessage(conn));
  }
  PQfinish(conn);
  return out;
}

static uid_t process_uid(pid_t pid) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof path, "/proc/%ld", (long)pid);
  return stat(path, &st) == 0 ? st.st_uid : (uid_t)-1;
}

START_TEST(cluster_lifecycle) {
  char *parent = test_make_temp_dir("pgc");
  rc_error_t err;
  pg_cluster_t *c = pg_cluster_start(parent, PG_CLUSTER_SCHEMA_REFWORKER, 60000, &err);
  ck_assert_msg(c != NULL, "%s", err.msg);
  printf("cluster started in %.2f s on port %d\n", pg_cluster_start_seconds(c), pg_cluster_port(c));
  pid_t pid = pg_cluster_pid(c);
  ck_assert_int_gt(pid, 0);
  ck_assert_int_eq(kill(pid, 0), 0);
  /* As root the server runs as postgres, never as root. */
  ck_assert_int_ne(process_uid(pid), 0);
  if (geteuid() != 0) ck_assert_int_eq(process_uid(pid), geteuid());
  char *dir = strdup(pg_cluster_dir(c));
  ck_assert_ptr_eq(strstr(dir, parent), dir);

  ck_assert_int_eq(pg_cluster_create_database(c, "replcheck_t1", &err), 0);
  ck_assert_int_eq(pg_cluster_create_database(c, "Bad-Name", &err), -1);
  ck_assert_ptr_nonnull(strstr(err.msg, "not a plain identifier"));
  char *admin = pg_cluster_admin_dsn(c, "replcheck_t1", "t");
  char *sut = pg_cluster_sut_dsn(c, "replcheck_t1", "replcheck-x/y");
  char *admin_postgres = pg_cluster_admin_dsn(c, NULL, "t");
  char *v = query_one(admin, "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user");
  ck_assert_str_eq(v, "true");
  free(v);
  /* The SUT role reads the schema from the template and writes positions. */
  v = query_one(sut, "SELECT count(*)::text FROM events");
  ck_assert_str_eq(v, "50");
  free(v);
  v = query_one(sut,
                "SELECT current_setting('application_name') || ' ' || "
                "(NOT rolsuper)::text FROM pg_roles WHERE rolname = current_user");
  ck_assert_str_eq(v, "replcheck-x/y true");
  free(v);
  v = query_one(sut,
                "WITH i AS (INSERT INTO stream_positions VALUES ('events', 'master', 7) "
                "RETURNING stream_id) SELECT stream_id::text FROM i");
  ck_assert_str_eq(v, "7");
  free(v);
  /* Sessions of the database are in the server log with db= (pg_cluster_log_lines). */
  char lines[2048];
  ck_assert_uint_gt(
      pg_cluster_log_lines(c, "replcheck_t1", "connection authorized", lines, sizeof lines), 0);
  ck_assert_ptr_nonnull(strstr(lines, "db=replcheck_t1 app="));

  /* Dropping ends the database's sessions first. */
  PGconn *held = PQconnectdb(sut);
  ck_assert_int_eq(PQstatus(held), CONNECTION_OK);
  ck_assert_int_eq(pg_cluster_drop_database(c, "replcheck_t1", &err), 0);
  PQfinish(held);
  v = query_one(admin_postgres,
                "SELECT count(*)::text FROM pg_database WHERE datname = 'replcheck_t1'");
  ck_assert_str_eq(v, "0");
  free(v);
  free(admin_postgres);
  ck_assert_int_eq(pg_cluster_drop_database(c, "x;y", &err), -1);

  pg_cluster_stop(c);
  ck_assert_msg(kill(pid, 0) != 0, "postgres %ld still running after stop", (long)pid);
  struct stat st;
  ck_assert_msg(stat(dir, &st) != 0, "%s still exists after stop", dir);
  ck_assert_int_eq(test_find_process(dir, "postgres"), 0);
  free(admin);
  free(sut);
  free(dir);
  test_remove_tree(parent);
  free(parent);
}
END_TEST

/* A server killed behind our back: stop still cleans up. */
START_TEST(cluster_stop_after_crash) {
  char *parent = test_make_temp_dir("pgk");
  rc_error_t err;
  pg_cluster_t *c = pg_cluster_start(parent, PG_CLUSTER_SCHEMA_REFWORKER, 60000, &err);
  ck_assert_msg(c != NULL, "%s", err.msg);
  char *dir = strdup(pg_cluster_dir(c));
  kill(pg_cluster_pid(c), SIGKILL);
  pg_cluster_stop(c);
  struct stat st;
  ck_assert_msg(stat(dir, &st) != 0, "%s still exists after stop", dir);
  free(dir);
  test_remove_tree(parent);
  free(parent);
}
END_TEST

/* Root, and a parent directory inside one the postgres user cannot enter: the cluster
 * goes under /tmp instead, and is removed all the same. */
START_TEST(cluster_outside_closed_directory) {
  if (geteuid() != 0) return; /* only root switches users */
  char *closed = test_make_temp_dir("pgclosed");
  ck_assert_int_eq(chmod(closed, 0700), 0);
  char *parent = test_path(closed, "run");
  ck_assert_int_eq(mkdir(parent, 0700), 0);
  rc_error_t err;
  pg_cluster_t *c = pg_cluster_start(parent, PG_CLUSTER_SCHEMA_REFWORKER, 60000, &err);
  ck_assert_msg(c != NULL, "%s", err.msg);
  char *dir = strdup(pg_cluster_dir(c));
  ck_assert_msg(strncmp(dir, "/tmp/replcheck-pg-", 18) == 0, "cluster in %s", dir);
  ck_assert_int_eq(pg_cluster_create_database(c, "replcheck_t2", &err), 0);
  pg_cluster_stop(c);
  struct stat st;
  ck_assert_msg(stat(dir, &st) != 0, "%s still exists after stop", dir);
  free(dir);
  test_remove_tree(closed);
  free(closed);
  free(parent);
}
END_TEST

/* PG_CLUSTER_SCHEMA_NONE: the template is empty and owned by the SUT role, which can
 * create tables there (as a profile's setup step does); a test database is a copy of
 * them, and a session still open on the template makes the copy fail, naming it. */
START_TEST(cluster_empty_template) {
  char *parent = test_make_temp_dir("pge");
  rc_error_t err;
  pg_cluster_t *c = pg_cluster_start(parent, PG_CLUSTER_SCHEMA_NONE, 60000, &err);
  ck_assert_msg(c != NULL, "%s", err.msg);
  char *tpl = pg_cluster_sut_dsn(c, PG_CLUSTER_TEMPLATE, "setup");
  char *v = query_one(tpl,
                      "SELECT pg_get_userbyid(datdba) || ' ' || (SELECT count(*) FROM pg_tables "
                      "WHERE schemaname = 'public')::text FROM pg_database WHERE datname = "
                      "current_database()");
  ck_assert_str_eq(v, PG_CLUSTER_SUT_ROLE " 0");
  free(v);
  PGconn *setup = PQconnectdb(tpl);
  ck_assert_int_eq(PQstatus(setup), CONNECTION_OK);
  PGresult *res = PQexec(setup, "CREATE TABLE marker (x INT); INSERT INTO marker VALUES (42)");
  ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(setup));
  PQclear(res);
  /* Still connected: PostgreSQL refuses to copy a template in use. */
  ck_assert_int_eq(pg_cluster_create_database(c, "replcheck_busy", &err), -1);
  ck_assert_msg(strstr(err.msg, "being accessed by other users") != NULL, "%s", err.msg);
  PQfinish(setup);
  ck_assert_int_eq(pg_cluster_create_database(c, "replcheck_e1", &err), 0);
  char *sut = pg_cluster_sut_dsn(c, "replcheck_e1", "t");
  v = query_one(sut,
                "SELECT x::text || ' ' || (SELECT count(*) FROM pg_tables WHERE "
                "schemaname = 'public')::text FROM marker");
  ck_assert_str_eq(v, "42 1");
  free(v);
  free(sut);
  free(tpl);
  pg_cluster_stop(c);
  test_remove_tree(parent);
  free(parent);
}
END_TEST

START_TEST(cluster_missing_binaries) {
  char *parent = test_make_temp_dir("pgm");
  setenv("REPLCHECK_PG_BIN_DIR", "/nonexistent/pg/bin", 1);
  rc_error_t err;
  pg_cluster_t *c = pg_cluster_start(parent, PG_CLUSTER_SCHEMA_REFWORKER, 5000, &err);
  unsetenv("REPLCHECK_PG_BIN_DIR");
  ck_assert_ptr_null(c);
  ck_assert_msg(strstr(err.msg, "/nonexistent/pg/bin/initdb") != NULL &&
                    strstr(err.msg, "postgresql") != NULL,
                "%s", err.msg);
  test_remove_tree(parent);
  free(parent);
}
END_TEST

int main(void) {
  Suite *s = suite_create("pg_cluster");
  TCase *tc = tcase_create("lifecycle");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, cluster_lifecycle);
  tcase_add_test(tc, cluster_stop_after_crash);
  tcase_add_test(tc, cluster_empty_template);
  tcase_add_test(tc, cluster_missing_binaries);
  tcase_add_test(tc, cluster_outside_closed_directory);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}

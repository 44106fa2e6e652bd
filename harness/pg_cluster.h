/* pg_cluster: a throwaway PostgreSQL cluster for one replcheck run (Debian's
 * postgresql package, version 15), for the database suite (requirements DB-01..DB-06).
 *
 * pg_cluster_start() runs initdb into a new directory under the caller's (the run's
 * temp directory), starts `postgres` on a free 127.0.0.1 port with durability turned
 * off (fsync, full_page_writes, synchronous_commit) and small memory, waits until it
 * accepts connections and creates:
 *   - the superuser PG_CLUSTER_ADMIN_ROLE, which the harness uses (trust auth, loopback
 *     only; the cluster lives only as long as the run);
 *   - the login role PG_CLUSTER_SUT_ROLE, which every SUT connects as: the observer
 *     tells SUT sessions from its own by this role;
 *   - the template database PG_CLUSTER_TEMPLATE holding the schema the SUT reads and
 *     writes (PG_CLUSTER_SCHEMA_REFWORKER: tables `events`, the #3682 start-up read,
 *     `stream_positions` and `federation_stream_position`; see docs/PROFILES.md
 *     "Database"), or, with
 *     PG_CLUSTER_SCHEMA_NONE, empty and owned by the SUT role, so that a profile's setup
 *     step connecting as that role (pg_cluster_sut_dsn(c, PG_CLUSTER_TEMPLATE, ...)) can
 *     create the SUT's own schema there before the first test.
 * pg_cluster_create_database() then makes one database per test from the template, so
 * tests running in parallel never see each other's sessions.
 *
 * Root: initdb and postgres refuse to run as root. When the effective uid is 0 they
 * run as the system user `postgres` (created by the package), the cluster directory
 * is chowned to it, and `parent_dir` gets o+x so that user can reach it; if a
 * directory above parent_dir is closed to that user, the cluster directory is made
 * under /tmp instead (still removed by pg_cluster_stop).
 *
 * The server is started as a direct child in a session of its own (a Ctrl-C at the
 * terminal reaches only replcheck, which stops it), with the parent-death signal set to
 * SIGQUIT, PostgreSQL's immediate shutdown, so it does not outlive a replcheck that is
 * killed outright. Its log (stderr) is <dir>/postgres.log, with the line prefix
 * "<time> [<pid>] db=<database> app=<application_name>: ", and SUT sessions log at
 * DEBUG1, which is where PostgreSQL reports a client that vanished without closing its
 * connection (pg_cluster_log_lines).
 *
 * Ownership and processes: the creating process owns the cluster. Forked children may
 * use it (create databases, read its fields) but pg_cluster_stop() stops the server and
 * removes the directory only in the process that started it; elsewhere it only frees
 * the memory. One thread. */
#ifndef PG_CLUSTER_H
#define PG_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "rc_error.h"

/* Where Debian's postgresql-15 package puts the server programs; REPLCHECK_PG_BIN_DIR in
 * the environment overrides it. */
#define PG_CLUSTER_DEFAULT_BIN_DIR "/usr/lib/postgresql/15/bin"
#define PG_CLUSTER_ADMIN_ROLE "replcheck"
#define PG_CLUSTER_SUT_ROLE "replcheck_sut"
#define PG_CLUSTER_TEMPLATE "replcheck_template"

typedef struct pg_cluster pg_cluster_t;

/* What the template database holds when pg_cluster_start() returns. */
typedef enum pg_cluster_schema {
  PG_CLUSTER_SCHEMA_REFWORKER = 0, /* refworker's tables, owned by the harness's role */
  PG_CLUSTER_SCHEMA_NONE,          /* nothing; the database is owned by the SUT role */
} pg_cluster_schema_t;

/* Creates and starts the cluster in a new directory under parent_dir (which must
 * exist), waiting up to timeout_ms for it to accept connections and for the template
 * (with `schema`) to be in place. NULL with err naming what failed: missing binaries ("... not
 * found: install Debian's postgresql package (ci/install-deps.sh)"), no `postgres` user when
 * running as root, initdb's or the server's own output. Nothing is left behind on
 * failure. */
pg_cluster_t *pg_cluster_start(const char *parent_dir, pg_cluster_schema_t schema, int timeout_ms,
                               rc_error_t *err);

int pg_cluster_port(const pg_cluster_t *cluster);
pid_t pg_cluster_pid(const pg_cluster_t *cluster);
const char *pg_cluster_dir(const pg_cluster_t *cluster);
/* The server's log file (stderr of postgres and all its backends). */
const char *pg_cluster_log_path(const pg_cluster_t *cluster);
/* Seconds pg_cluster_start() took (initdb, start, schema). */
double pg_cluster_start_seconds(const pg_cluster_t *cluster);

/* libpq connection strings for database dbname (NULL = "postgres") as the harness's
 * superuser, or as the SUT role, with application_name set (may be NULL). Values are
 * quoted for conninfo. Malloc'd; NULL when out of memory. */
char *pg_cluster_admin_dsn(const pg_cluster_t *cluster, const char *dbname,
                           const char *application_name);
char *pg_cluster_sut_dsn(const pg_cluster_t *cluster, const char *dbname,
                         const char *application_name);

/* CREATE DATABASE dbname from the template, owned by the SUT role. Nobody may be
 * connected to the template meanwhile (PostgreSQL refuses the copy): a setup step that
 * prepared it must have exited. dbname must be a
 * plain lower-case identifier ([a-z0-9_], <= 63 bytes). Any process may call it.
 * Returns 0, or -1 with err. */
int pg_cluster_create_database(const pg_cluster_t *cluster, const char *dbname, rc_error_t *err);

/* DROP DATABASE dbname WITH (FORCE): its sessions are ended first. For the end of a
 * test, so a long run does not fill the disk (about 8 MB a database). Returns 0, or -1
 * with err. */
int pg_cluster_drop_database(const pg_cluster_t *cluster, const char *dbname, rc_error_t *err);

/* Copies into buf (NUL-terminated, truncated to cap) the server log lines of database
 * dbname that contain `needle`, separated by " | ", and returns how many there were (0 when
 * none or the log cannot be read). */
size_t pg_cluster_log_lines(const pg_cluster_t *cluster, const char *dbname, const char *needle,
                            char *buf, size_t cap);

/* Stops the server at once (SIGQUIT, PostgreSQL's immediate shutdown; SIGKILL after
 * 5 s), removes its directory and frees. In a process other than the one that
 * started it, only frees. NULL is fine. Safe after the server died or was killed. */
void pg_cluster_stop(pg_cluster_t *cluster);

#endif

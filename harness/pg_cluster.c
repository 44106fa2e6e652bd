#include "pg_cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rc_clock.h"
#include "rc_net.h"

/* Bound on the immediate shutdown before SIGKILL. */
#define PG_STOP_GRACE_MS 5000
/* Ports tried when another process takes the free port first. */
#define PG_PORT_ATTEMPTS 3
/* A Unix socket path must fit sun_path (108 bytes) with ".s.PGSQL.NNNNN" appended. */
#define PG_SOCKET_DIR_MAX 90

struct pg_cluster {
  char *dir; /* the cluster directory (data/, postgres.log, initdb.log) */
  char *data_dir;
  char *log_path;
  char *bin_dir;
  pid_t pid;   /* the postmaster */
  pid_t owner; /* the process that started it */
  int port;
  bool as_postgres; /* programs run as the `postgres` user (we are root) */
  uid_t uid;
  gid_t gid;
  double start_seconds;
};

/* The schema every test database starts with. `events` is what the worker reads at
 * start-up (Synapse's stream-change-cache prefill, the query of #3682); its rows span a
 * few rooms so a GROUP BY has something to group. */
static const char *const SCHEMA_SQL[] = {
    "CREATE TABLE events (stream_ordering BIGINT PRIMARY KEY, room_id TEXT NOT NULL, "
    "type TEXT NOT NULL)",
    "INSERT INTO events SELECT n, '!room' || (n % 5) || ':test', 'm.room.message' "
    "FROM generate_series(1, 50) AS n",
    "CREATE TABLE stream_positions (stream_name TEXT NOT NULL, instance_name TEXT NOT NULL, "
    "stream_id BIGINT NOT NULL, PRIMARY KEY (stream_name, instance_name))",
    /* Synapse's own layout: a federation sender's position, which BG-08 revokes UPDATE on. */
    "CREATE TABLE federation_stream_position (type TEXT NOT NULL, stream_id BIGINT NOT NULL, "
    "instance_name TEXT NOT NULL DEFAULT 'master', UNIQUE (type, instance_name))",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " PG_CLUSTER_SUT_ROLE,
    NULL,
};

static char *join(const char *a, const char *b) {
  char *out = NULL;
  if (asprintf(&out, "%s/%s", a, b) < 0) return NULL;
  return out;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  remove(path);
  return 0;
}

static void remove_tree(const char *path) {
  if (path != NULL) nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The last cap - 1 bytes of a file on one line, for error messages. */
static void file_tail(const char *path, char *buf, size_t cap) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  long max = (long)cap - 1;
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    fseek(f, size > max ? size - max : 0, SEEK_SET);
  }
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
  for (char *p = buf; *p; p++)
    if (*p == '\n') *p = ' ';
}

/* Child side of spawn(): drop to the postgres user, redirect, exec. Never returns. */
static void exec_child(const pg_cluster_t *c, char *const argv[], const char *out_path,
                       bool own_session) {
  if (own_session) setsid();
  int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  int null = open("/dev/null", O_RDONLY);
  if (fd < 0 || null < 0) _exit(126);
  if (c->as_postgres) {
    if (fchown(fd, c->uid, c->gid) != 0 || setgroups(0, NULL) != 0 || setgid(c->gid) != 0 ||
        setuid(c->uid) != 0) {
      dprintf(fd, "replcheck: cannot switch to the postgres user: %s\n", strerror(errno));
      _exit(126);
    }
  }
  /* After setuid: changing credentials clears the parent-death signal. */
  if (own_session) prctl(PR_SET_PDEATHSIG, SIGQUIT);
  dup2(null, 0);
  dup2(fd, 1);
  dup2(fd, 2);
  for (int i = 3; i < 1024; i++) close(i);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  execv(argv[0], argv);
  dprintf(2, "replcheck: cannot execute %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

static pid_t spawn(const pg_cluster_t *c, char *const argv[], const char *out_path,
                   bool own_session) {
  pid_t pid = fork();
  if (pid == 0) exec_child(c, argv, out_path, own_session);
  return pid;
}

/* Waits up to timeout_ms for pid; true with *status when it exited. */
static bool wait_exit(pid_t pid, int timeout_ms, int *status) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    pid_t got = waitpid(pid, status, WNOHANG);
    if (got == pid) return true;
    if (got < 0) { /* reaped elsewhere (a caller's waitpid(-1)) */
      *status = -1;
      return true;
    }
    if (rc_clock_mono_ms() >= deadline) return false;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static int run_initdb(pg_cluster_t *c, int timeout_ms, rc_error_t *err) {
  char *initdb = join(c->bin_dir, "initdb");
  char *out = join(c->dir, "initdb.log");
  int rc = -1;
  if (initdb == NULL || out == NULL) {
    rc_error_set(err, "out of memory");
  } else {
    char *argv[] = {initdb, "-D",   c->data_dir,  "-U",        PG_CLUSTER_ADMIN_ROLE, "-A", "trust",
                    "-E",   "UTF8", "--locale=C", "--no-sync", "--no-instructions",   NULL};
    pid_t pid = spawn(c, argv, out, false);
    int status = 0;
    if (pid < 0) {
      rc_error_set(err, "cannot fork for initdb: %s", strerror(errno));
    } else if (!wait_exit(pid, timeout_ms, &status)) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      rc_error_set(err, "initdb did not finish within %d ms", timeout_ms);
    } else if (status != 0) {
      char tail[600];
      file_tail(out, tail, sizeof tail);
      rc_error_set(err, "initdb -D %s failed (status %d): %s", c->data_dir, status, tail);
    } else {
      rc = 0;
    }
  }
  free(initdb);
  free(out);
  return rc;
}

/* Starts postgres on c->port; 0 once it accepts connections, 1 if it exited because
 * the port was taken (try another), -1 with err otherwise. */
static int start_server(pg_cluster_t *c, int64_t deadline_ms, rc_error_t *err) {
  char *postgres = join(c->bin_dir, "postgres");
  if (postgres == NULL) return rc_error_set(err, "out of memory");
  char port[16], sockets[PG_SOCKET_DIR_MAX + 32];
  snprintf(port, sizeof port, "port=%d", c->port);
  /* A socket in our directory when the path fits; TCP is what everyone uses anyway. */
  snprintf(sockets, sizeof sockets, "unix_socket_directories=%s",
           strlen(c->dir) <= PG_SOCKET_DIR_MAX ? c->dir : "");
  char *argv[] = {postgres,
                  "-D",
                  c->data_dir,
                  "-c",
                  port,
                  "-c",
                  "listen_addresses=127.0.0.1",
                  "-c",
                  sockets,
                  "-c",
                  "fsync=off",
                  "-c",
                  "full_page_writes=off",
                  "-c",
                  "synchronous_commit=off",
                  "-c",
                  "shared_buffers=16MB",
                  "-c",
                  "max_connections=60",
                  "-c",
                  "autovacuum=off",
                  "-c",
                  "dynamic_shared_memory_type=mmap",
                  "-c",
                  "huge_pages=off",
                  "-c",
                  "log_line_prefix=%m [%p] db=%d app=%a: ",
                  "-c",
                  "log_connections=on",
                  "-c",
                  "log_disconnections=on",
                  NULL};
  c->pid = spawn(c, argv, c->log_path, true);
  free(postgres);
  if (c->pid < 0) {
    c->pid = 0;
    return rc_error_set(err, "cannot fork for postgres: %s", strerror(errno));
  }
  char *dsn = pg_cluster_admin_dsn(c, NULL, "replcheck-startup");
  if (dsn == NULL) return rc_error_set(err, "out of memory");
  int rc = -1;
  for (;;) {
    int status;
    if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
      c->pid = 0;
      char tail[600];
      file_tail(c->log_path, tail, sizeof tail);
      rc = strstr(tail, "could not bind") != NULL || strstr(tail, "in use") != NULL ? 1 : -1;
      rc_error_set(err, "postgres exited during start-up (status %d): %s", status, tail);
      break;
    }
    if (PQping(dsn) == PQPING_OK) {
      rc = 0;
      break;
    }
    if (rc_clock_mono_ms() >= deadline_ms) {
      char tail[600];
      file_tail(c->log_path, tail, sizeof tail);
      rc_error_set(err, "postgres did not accept connections on 127.0.0.1:%d in time: %s", c->port,
                   tail);
      break;
    }
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
  free(dsn);
  return rc;
}

static int exec_sql(PGconn *conn, const char *sql, rc_error_t *err) {
  PGresult *res = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(res);
  int rc = 0;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    rc = rc_error_set(err, "%s: %s", sql, PQerrorMessage(conn));
  PQclear(res);
  return rc;
}

static PGconn *connect_admin(const pg_cluster_t *c, const char *dbname, rc_error_t *err) {
  char *dsn = pg_cluster_admin_dsn(c, dbname, "replcheck-harness");
  if (dsn == NULL) {
    rc_error_set(err, "out of memory");
    return NULL;
  }
  PGconn *conn = PQconnectdb(dsn);
  free(dsn);
  if (PQstatus(conn) != CONNECTION_OK) {
    rc_error_set(err, "cannot connect to the test cluster (127.0.0.1:%d, database %s): %s", c->port,
                 dbname ? dbname : "postgres", PQerrorMessage(conn));
    PQfinish(conn);
    return NULL;
  }
  return conn;
}

static int create_schema(pg_cluster_t *c, pg_cluster_schema_t schema, rc_error_t *err) {
  PGconn *conn = connect_admin(c, NULL, err);
  if (conn == NULL) return -1;
  int rc = exec_sql(conn, "CREATE ROLE " PG_CLUSTER_SUT_ROLE " LOGIN", err);
  /* The one place PostgreSQL reports a client that left without closing (DEBUG1). */
  if (rc == 0)
    rc = exec_sql(conn, "ALTER ROLE " PG_CLUSTER_SUT_ROLE " SET log_min_messages = 'debug1'", err);
  if (rc == 0 && schema == PG_CLUSTER_SCHEMA_NONE)
    rc = exec_sql(conn, "CREATE DATABASE " PG_CLUSTER_TEMPLATE " OWNER " PG_CLUSTER_SUT_ROLE, err);
  else if (rc == 0)
    rc = exec_sql(conn, "CREATE DATABASE " PG_CLUSTER_TEMPLATE, err);
  PQfinish(conn);
  if (rc != 0 || schema == PG_CLUSTER_SCHEMA_NONE) return rc;
  conn = connect_admin(c, PG_CLUSTER_TEMPLATE, err);
  if (conn == NULL) return -1;
  for (size_t i = 0; rc == 0 && SCHEMA_SQL[i] != NULL; i++) rc = exec_sql(conn, SCHEMA_SQL[i], err);
  PQfinish(conn);
  return rc;
}

/* True if uid/gid may search every directory on the way to path (absolute). */
static bool reachable_by(const char *path, uid_t uid, gid_t gid) {
  char *copy = strdup(path);
  if (copy == NULL) return false;
  bool ok = true;
  for (char *slash = copy; ok && slash != NULL; slash = strchr(slash + 1, '/')) {
    char keep = slash[1];
    slash[1] = '\0';
    struct stat st;
    ok = stat(copy, &st) == 0 &&
         ((st.st_uid == uid && (st.st_mode & S_IXUSR)) ||
          (st.st_gid == gid && (st.st_mode & S_IXGRP)) || (st.st_mode & S_IXOTH));
    slash[1] = keep;
  }
  free(copy);
  return ok;
}

/* Root runs the programs as `postgres`, which needs a way in: parent_dir (ours) gets
 * o+x; when a directory above it is closed to that user (a private temp dir), the
 * cluster goes into a directory of its own under /tmp instead. */
static int prepare_user(pg_cluster_t *c, const char *parent_dir, rc_error_t *err) {
  if (geteuid() != 0) return 0;
  struct passwd *pw = getpwnam("postgres");
  if (pw == NULL)
    return rc_error_set(err,
                        "running as root, but there is no 'postgres' user to run the "
                        "PostgreSQL server as (install Debian's postgresql package: "
                        "ci/install-deps.sh)");
  c->as_postgres = true;
  c->uid = pw->pw_uid;
  c->gid = pw->pw_gid;
  struct stat st;
  if (stat(parent_dir, &st) == 0 && (st.st_mode & S_IXOTH) == 0)
    chmod(parent_dir, (st.st_mode & 07777) | S_IXOTH);
  char *absolute = realpath(c->dir, NULL);
  bool reachable = absolute != NULL && reachable_by(absolute, c->uid, c->gid);
  free(absolute);
  if (!reachable) {
    char *elsewhere = strdup("/tmp/replcheck-pg-XXXXXX");
    if (elsewhere == NULL || mkdtemp(elsewhere) == NULL) {
      free(elsewhere);
      return rc_error_set(err,
                          "the postgres user cannot reach %s, and no directory could be "
                          "made under /tmp",
                          c->dir);
    }
    rmdir(c->dir);
    free(c->dir);
    c->dir = elsewhere;
  }
  if (chown(c->dir, c->uid, c->gid) != 0)
    return rc_error_set(err, "cannot give %s to the postgres user: %s", c->dir, strerror(errno));
  return 0;
}

static int check_binaries(const pg_cluster_t *c, rc_error_t *err) {
  static const char *const programs[] = {"initdb", "postgres"};
  for (size_t i = 0; i < 2; i++) {
    char *path = join(c->bin_dir, programs[i]);
    bool ok = path != NULL && access(path, X_OK) == 0;
    if (!ok) {
      rc_error_set(err,
                   "%s not found or not executable: the database tests need PostgreSQL "
                   "15 (Debian package postgresql, see ci/install-deps.sh; or set "
                   "REPLCHECK_PG_BIN_DIR)",
                   path ? path : programs[i]);
      free(path);
      return -1;
    }
    free(path);
  }
  return 0;
}

pg_cluster_t *pg_cluster_start(const char *parent_dir, pg_cluster_schema_t schema, int timeout_ms,
                               rc_error_t *err) {
  int64_t start = rc_clock_mono_ms();
  int64_t deadline = start + timeout_ms;
  pg_cluster_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    rc_error_set(err, "out of memory");
    return NULL;
  }
  c->owner = getpid();
  const char *bin = getenv("REPLCHECK_PG_BIN_DIR");
  c->bin_dir = strdup(bin != NULL && bin[0] != '\0' ? bin : PG_CLUSTER_DEFAULT_BIN_DIR);
  c->dir = join(parent_dir, "pg-XXXXXX");
  if (c->bin_dir == NULL || c->dir == NULL) {
    rc_error_set(err, "out of memory");
    goto fail;
  }
  if (check_binaries(c, err) != 0) goto fail;
  if (mkdtemp(c->dir) == NULL) {
    rc_error_set(err, "cannot create a directory under %s: %s", parent_dir, strerror(errno));
    free(c->dir);
    c->dir = NULL;
    goto fail;
  }
  if (prepare_user(c, parent_dir, err) != 0) goto fail;
  c->data_dir = join(c->dir, "data");
  c->log_path = join(c->dir, "postgres.log");
  if (c->data_dir == NULL || c->log_path == NULL) {
    rc_error_set(err, "out of memory");
    goto fail;
  }
  if (run_initdb(c, (int)(deadline - rc_clock_mono_ms()), err) != 0) goto fail;
  int started = 1;
  for (int attempt = 0; started == 1 && attempt < PG_PORT_ATTEMPTS; attempt++) {
    c->port = rc_net_free_port();
    started = start_server(c, deadline, err);
  }
  if (started != 0) goto fail;
  if (create_schema(c, schema, err) != 0) goto fail;
  c->start_seconds = (double)(rc_clock_mono_ms() - start) / 1000.0;
  return c;
fail:
  rc_error_prefix(err, "cannot start the PostgreSQL test cluster");
  pg_cluster_stop(c);
  return NULL;
}

int pg_cluster_port(const pg_cluster_t *c) {
  return c->port;
}
pid_t pg_cluster_pid(const pg_cluster_t *c) {
  return c->pid;
}
const char *pg_cluster_dir(const pg_cluster_t *c) {
  return c->dir;
}
const char *pg_cluster_log_path(const pg_cluster_t *c) {
  return c->log_path;
}
double pg_cluster_start_seconds(const pg_cluster_t *c) {
  return c->start_seconds;
}

/* Appends " key='value'" with conninfo quoting (backslash before ' and \). */
static void append_param(char *buf, size_t cap, const char *key, const char *value) {
  size_t used = strlen(buf);
  int n = snprintf(buf + used, cap - used, "%s%s='", used ? " " : "", key);
  if (n < 0 || (size_t)n >= cap - used) return;
  used += (size_t)n;
  for (const char *p = value; *p && used + 3 < cap; p++) {
    if (*p == '\'' || *p == '\\') buf[used++] = '\\';
    buf[used++] = *p;
  }
  if (used + 2 <= cap) {
    buf[used++] = '\'';
    buf[used] = '\0';
  }
}

static char *make_dsn(const pg_cluster_t *c, const char *user, const char *dbname,
                      const char *application_name) {
  char buf[1024] = "", port[16];
  snprintf(port, sizeof port, "%d", c->port);
  append_param(buf, sizeof buf, "host", "127.0.0.1");
  append_param(buf, sizeof buf, "port", port);
  append_param(buf, sizeof buf, "dbname", dbname ? dbname : "postgres");
  append_param(buf, sizeof buf, "user", user);
  if (application_name != NULL) append_param(buf, sizeof buf, "application_name", application_name);
  return strdup(buf);
}

char *pg_cluster_admin_dsn(const pg_cluster_t *c, const char *dbname, const char *app) {
  return make_dsn(c, PG_CLUSTER_ADMIN_ROLE, dbname, app);
}

char *pg_cluster_sut_dsn(const pg_cluster_t *c, const char *dbname, const char *app) {
  return make_dsn(c, PG_CLUSTER_SUT_ROLE, dbname, app);
}

/* Runs `<head><dbname><tail>` on a fresh superuser session; dbname must be a plain
 * identifier (checked here, since it is spliced into the SQL). */
static int database_statement(const pg_cluster_t *c, const char *head, const char *dbname,
                              const char *tail, rc_error_t *err) {
  size_t len = strlen(dbname);
  bool plain = len > 0 && len <= 63;
  for (const char *p = dbname; plain && *p; p++)
    plain = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
  if (!plain) return rc_error_set(err, "database name '%s' is not a plain identifier", dbname);
  PGconn *conn = connect_admin(c, NULL, err);
  if (conn == NULL) return -1;
  char sql[256];
  snprintf(sql, sizeof sql, "%s%s%s", head, dbname, tail);
  int rc = exec_sql(conn, sql, err);
  PQfinish(conn);
  return rc;
}

int pg_cluster_create_database(const pg_cluster_t *c, const char *dbname, rc_error_t *err) {
  return database_statement(c, "CREATE DATABASE ", dbname,
                            " TEMPLATE " PG_CLUSTER_TEMPLATE " OWNER " PG_CLUSTER_SUT_ROLE, err);
}

int pg_cluster_drop_database(const pg_cluster_t *c, const char *dbname, rc_error_t *err) {
  return database_statement(c, "DROP DATABASE ", dbname, " WITH (FORCE)", err);
}

size_t pg_cluster_log_lines(const pg_cluster_t *c, const char *dbname, const char *needle,
                            char *buf, size_t cap) {
  if (cap > 0) buf[0] = '\0';
  FILE *f = fopen(c->log_path, "r");
  if (f == NULL) return 0;
  char tag[96];
  snprintf(tag, sizeof tag, " db=%s ", dbname);
  size_t found = 0, used = 0;
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t n;
  while ((n = getline(&line, &line_cap, f)) > 0) {
    if (strstr(line, tag) == NULL || strstr(line, needle) == NULL) continue;
    found++;
    line[strcspn(line, "\n")] = '\0';
    if (cap > used + 1) {
      int w = snprintf(buf + used, cap - used, "%s%s", used ? " | " : "", line);
      used = w < 0 ? used : (size_t)w >= cap - used ? cap - 1 : used + (size_t)w;
    }
  }
  free(line);
  fclose(f);
  return found;
}

void pg_cluster_stop(pg_cluster_t *c) {
  if (c == NULL) return;
  if (c->owner == getpid()) {
    if (c->pid > 0) {
      int status;
      kill(c->pid, SIGQUIT);
      if (!wait_exit(c->pid, PG_STOP_GRACE_MS, &status)) {
        kill(c->pid, SIGKILL);
        wait_exit(c->pid, PG_STOP_GRACE_MS, &status);
      }
      /* The postmaster waits for its backends in an immediate shutdown; after a SIGKILL
       * some may remain in its process group (session): they go too. */
      kill(-c->pid, SIGKILL);
    }
    remove_tree(c->dir);
  }
  free(c->dir);
  free(c->data_dir);
  free(c->log_path);
  free(c->bin_dir);
  free(c);
}

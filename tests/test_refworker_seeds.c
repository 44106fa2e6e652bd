/* Integration tests of refworker's observable surface for seeds A, C, D, E, G and H
 * (shared/spec/seed-behaviours.md): the real binary with --http-port, --cache and --bug,
 * a plain socket of this file playing the main process (and, for the catch-up, its
 * replication HTTP endpoint), libcurl scraping /metrics and probing the HTTP listener,
 * and the worker's log file read back.
 *
 * Each test names the requirement it checks (shared/spec/requirements.md §10, §11, §14)
 * and checks the matching --bug switch turns exactly that behaviour back; failures print
 * Requirement / Expected / Actual. Every wait has a deadline. REFWORKER_TEST_MARGIN_MS
 * (default 400) widens the margins and REFWORKER_TEST_WRAPPER (e.g. "valgrind
 * --error-exitcode=99") runs the worker under a wrapper, for hand runs. */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto.h"
#include "rc_clock.h"
#include "rc_net.h"
#include "test_support.h"

#define SERVER_NAME "test.local"
#define INSTANCE "worker1"
#define VERSION_HEADER "refworker/" REPLCHECK_VERSION
#define BAD_TYPING_ROW "[\"!r:hs\"]"
#define TYPING_ROW "[\"!r:hs\",[\"@x:hs\"]]"

/* ---- per-test state (one test per process in CK_FORK mode) ------------------------ */

static proto_dialect_t dialect;
static char *temp_dir;
static char *log_path;
static int listen_fd = -1; /* the fake main's replication port */
static int listen_port;
static int http_listen_fd = -1; /* the fake main's replication HTTP port (catch-up) */
static int http_listen_port;
static int conn_fd = -1; /* the worker's replication connection */
static char conn_buf[4 * PROTO_MAX_LINE];
static size_t conn_len;
static int worker_http_port;
static pid_t child = -1;
static int64_t margin_ms;

static int listen_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
  ck_assert_int_eq(listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
  *port = ntohs(addr.sin_port);
  return fd;
}

static void setup(void) {
  const char *margin = getenv("REFWORKER_TEST_MARGIN_MS");
  margin_ms = margin != NULL && atoi(margin) > 0 ? atoi(margin) : 400;
  temp_dir = test_make_temp_dir("test_refworker_seeds");
  ck_assert_ptr_nonnull(temp_dir);
  log_path = test_path(temp_dir, "worker.log");
  listen_fd = listen_loopback(&listen_port);
  http_listen_fd = listen_loopback(&http_listen_port);
  conn_fd = -1;
  conn_len = 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int worker_wait(int64_t deadline) {
  for (;;) {
    int status = 0;
    if (waitpid(child, &status, WNOHANG) == child) {
      child = -1;
      return status;
    }
    if (rc_clock_mono_ms() >= deadline) return -1;
    poll(NULL, 0, 10);
  }
}

static void teardown(void) {
  int status = 0;
  bool stopped = true;
  if (child > 0) {
    kill(child, SIGTERM);
    status = worker_wait(rc_clock_mono_ms() + 5000 + 10 * margin_ms);
    stopped = status != -1;
    if (child > 0) {
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
      child = -1;
    }
  }
  if (conn_fd >= 0) close(conn_fd);
  if (listen_fd >= 0) close(listen_fd);
  if (http_listen_fd >= 0) close(http_listen_fd);
  conn_fd = listen_fd = http_listen_fd = -1;
  test_remove_tree(temp_dir);
  free(temp_dir);
  free(log_path);
  temp_dir = log_path = NULL;
  curl_global_cleanup();
  ck_assert_msg(stopped && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "CL-05 (orderly exit on SIGTERM at the end of the test)\n  Expected: exit "
                "status 0\n  Actual: %s %d",
                !stopped            ? "no exit, status"
                : WIFEXITED(status) ? "exit"
                                    : "signal",
                !stopped            ? -1
                : WIFEXITED(status) ? WEXITSTATUS(status)
                                    : WTERMSIG(status));
}

/* ---- the worker ------------------------------------------------------------------- */

/* Starts refworker in `dialect` consuming typing (and device_lists, added by --cache),
 * with the extra options given (NULL-ended). */
static void worker_start(const char *const *extra) {
  char port[16], http_port[16], http_url[64];
  worker_http_port = rc_net_free_port();
  ck_assert_int_gt(worker_http_port, 0);
  snprintf(port, sizeof port, "%d", listen_port);
  snprintf(http_port, sizeof http_port, "%d", worker_http_port);
  snprintf(http_url, sizeof http_url, "http://127.0.0.1:%d", http_listen_port);
  char *bin = test_path(test_env("REPLCHECK_BIN_DIR"), "refworker");
  const char *argv[96];
  size_t argc = 0;
  const char *fixed[] = {bin,
                         "--host",
                         "127.0.0.1",
                         "--port",
                         port,
                         "--server-name",
                         SERVER_NAME,
                         "--dialect",
                         proto_dialect_name(dialect),
                         "--log",
                         log_path,
                         "--instance-name",
                         INSTANCE,
                         "--ping-interval-ms",
                         "200",
                         "--ping-timeout-ms",
                         "10000",
                         "--http-port",
                         http_port,
                         "--stream",
                         "typing"};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[argc++] = fixed[i];
  if (dialect == PROTO_DIALECT_MODERN) {
    argv[argc++] = "--http-url";
    argv[argc++] = http_url;
  }
  for (size_t i = 0; extra != NULL && extra[i] != NULL && argc < 94; i++) argv[argc++] = extra[i];
  argv[argc] = NULL;
  child = test_spawn_wrapped(argv);
  free(bin);
}

/* ---- the fake main's replication connection -------------------------------------- */

static int poll_ms(int64_t deadline) {
  int64_t left = deadline - rc_clock_mono_ms();
  return left < 0 ? 0 : (int)left;
}

/* The worker's next line (PINGs included) into line; false at the deadline or EOF. */
static bool conn_read_line(char *line, size_t cap, int64_t deadline) {
  for (;;) {
    char *lf = memchr(conn_buf, '\n', conn_len);
    if (lf != NULL) {
      size_t n = (size_t)(lf - conn_buf);
      snprintf(line, cap, "%.*s", (int)n, conn_buf);
      memmove(conn_buf, lf + 1, conn_len - n - 1);
      conn_len -= n + 1;
      return true;
    }
    struct pollfd p = {.fd = conn_fd, .events = POLLIN};
    if (poll(&p, 1, poll_ms(deadline)) <= 0) return false;
    ssize_t got = recv(conn_fd, conn_buf + conn_len, sizeof conn_buf - conn_len, 0);
    if (got <= 0) return false;
    conn_len += (size_t)got;
  }
}

static void conn_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void conn_send(const char *fmt, ...) {
  char text[PROTO_MAX_LINE + 2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  ck_assert(n > 0 && (size_t)n < sizeof text);
  for (const char *p = text; n > 0;) {
    ssize_t sent = send(conn_fd, p, (size_t)n, MSG_NOSIGNAL);
    ck_assert_msg(sent > 0, "sending to the worker: %s", strerror(errno));
    p += sent;
    n -= (int)sent;
  }
}

/* Accepts the worker, reads its opening lines, sends SERVER (and, modern, the POSITIONs
 * that connect typing and device_lists at 1). */
static void conn_open(void) {
  struct pollfd p = {.fd = listen_fd, .events = POLLIN};
  ck_assert_msg(poll(&p, 1, 5000 + 10 * (int)margin_ms) == 1, "the worker did not connect");
  conn_fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_int_ge(conn_fd, 0);
  char line[PROTO_MAX_LINE + 1];
  int64_t deadline = rc_clock_mono_ms() + 2000 + 5 * margin_ms;
  /* NAME, PING, then REPLICATE line(s): wait for the first REPLICATE. */
  do ck_assert_msg(conn_read_line(line, sizeof line, deadline), "no REPLICATE from the worker");
  while (strncmp(line, "REPLICATE", 9) != 0);
  conn_send("SERVER " SERVER_NAME "\n");
  if (dialect == PROTO_DIALECT_MODERN)
    conn_send("POSITION typing master 1 1\nPOSITION device_lists master 1 1\n");
}

/* ---- HTTP probes -------------------------------------------------------------------- */

typedef struct response {
  long status;
  char headers[8192];
  size_t headers_len;
  char *body;
  size_t body_len;
} response_t;

static size_t on_header(char *data, size_t size, size_t count, void *arg) {
  response_t *r = arg;
  size_t n = size * count;
  if (r->headers_len + n < sizeof r->headers) {
    memcpy(r->headers + r->headers_len, data, n);
    r->headers_len += n;
    r->headers[r->headers_len] = '\0';
  }
  return n;
}

static size_t on_body(char *data, size_t size, size_t count, void *arg) {
  response_t *r = arg;
  size_t n = size * count;
  char *grown = realloc(r->body, r->body_len + n + 1);
  if (grown == NULL) return 0;
  r->body = grown;
  memcpy(r->body + r->body_len, data, n);
  r->body_len += n;
  r->body[r->body_len] = '\0';
  return n;
}

/* A request to the worker's HTTP listener; r->body is malloc'd (free it). */
static void http_request(const char *method, const char *path, response_t *r) {
  memset(r, 0, sizeof *r);
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", worker_http_port, path);
  CURL *curl = curl_easy_init();
  ck_assert_ptr_nonnull(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L + 10 * margin_ms);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
  if (strcmp(method, "GET") != 0) curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  CURLcode rc = curl_easy_perform(curl);
  ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_cleanup(curl);
  if (r->body == NULL) r->body = calloc(1, 1);
}

/* The value of one series ("name{labels}" exactly as written), or -1 when absent. */
static double scrape(const char *series) {
  response_t r;
  http_request("GET", "/metrics", &r);
  ck_assert_int_eq(r.status, 200);
  double value = -1;
  size_t len = strlen(series);
  for (char *line = r.body; line != NULL && *line != '\0';) {
    char *eol = strchr(line, '\n');
    if (strncmp(line, series, len) == 0 && line[len] == ' ') {
      value = strtod(line + len + 1, NULL);
      break;
    }
    line = eol != NULL ? eol + 1 : NULL;
  }
  free(r.body);
  return value;
}

static bool metrics_mention(const char *needle) {
  response_t r;
  http_request("GET", "/metrics", &r);
  bool found = strstr(r.body, needle) != NULL;
  free(r.body);
  return found;
}

/* Scrapes until the series has `value` or the deadline passes; returns the last value. */
static double scrape_until(const char *series, double value, int64_t deadline) {
  for (;;) {
    double got = scrape(series);
    if (got == value || rc_clock_mono_ms() >= deadline) return got;
    poll(NULL, 0, 50);
  }
}

/* Counter series name as the dialect writes it. */
static const char *starts(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "synapse_background_process_start_count%s{name=\"%s\"}",
           dialect == PROTO_DIALECT_MODERN ? "_total" : "", name);
  return buf;
}

static const char *in_flight(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "synapse_background_process_in_flight_count{name=\"%s\"}", name);
  return buf;
}

/* ---- the log ------------------------------------------------------------------------ */

static bool log_has(const char *needle) {
  char *text = test_read_file(log_path, NULL);
  bool found = text != NULL && strstr(text, needle) != NULL;
  free(text);
  return found;
}

/* Waits for the needle in the log; returns the ms waited or -1 at the deadline. */
static int64_t log_wait(const char *needle, int64_t deadline) {
  int64_t start = rc_clock_mono_ms();
  for (;;) {
    if (log_has(needle)) return rc_clock_mono_ms() - start;
    if (rc_clock_mono_ms() >= deadline) return -1;
    poll(NULL, 0, 20);
  }
}

static char *log_text(void) {
  char *text = test_read_file(log_path, NULL);
  ck_assert_ptr_nonnull(text);
  return text;
}

/* ---- seed E: the Server header ----------------------------------------------------- */

static int server_headers(const response_t *r, char *value, size_t cap) {
  int count = 0;
  value[0] = '\0';
  for (const char *p = r->headers; (p = strcasestr(p, "\nServer:")) != NULL; p++) {
    count++;
    const char *v = p + strlen("\nServer:");
    while (*v == ' ') v++;
    snprintf(value, cap, "%.*s", (int)strcspn(v, "\r\n"), v);
  }
  return count;
}

static void check_server_headers(bool bug) {
  static const struct {
    const char *method, *path;
    long status;
    bool error_path;
  } probes[] = {
      {"GET", "/health", 200, false},
      {"GET", "/metrics", 200, false},
      {"GET", "/nothing/here", 404, true},
      {"GET", "/_refworker/fail", 500, true},
      {"OPTIONS", "/_matrix/client", 200, true},
  };
  for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
    response_t r;
    http_request(probes[i].method, probes[i].path, &r);
    ck_assert_int_eq(r.status, probes[i].status);
    char value[256];
    int count = server_headers(&r, value, sizeof value);
    bool expect = !(bug && probes[i].error_path);
    ck_assert_msg(expect ? (count == 1 && strcmp(value, VERSION_HEADER) == 0) : count == 0,
                  "HT-01/HT-02%s\n  Expected: %s on %s %s\n  Actual: %d Server header(s), '%s'",
                  bug ? " with --bug missing-server-header" : "",
                  expect ? "one 'Server: " VERSION_HEADER "'" : "no Server header",
                  probes[i].method, probes[i].path, count, value);
    free(r.body);
  }
}

START_TEST(test_server_header_everywhere) {
  dialect = _i == 0 ? PROTO_DIALECT_2018 : PROTO_DIALECT_MODERN;
  worker_start(NULL);
  conn_open();
  check_server_headers(false);
  /* HT-03: the same version is logged at startup. */
  ck_assert_msg(log_has(" - WARNING - main - Server refworker version " REPLCHECK_VERSION "\n"),
                "HT-03\n  Expected: WARNING 'Server refworker version " REPLCHECK_VERSION "'");
}
END_TEST

START_TEST(test_bug_missing_server_header) {
  dialect = PROTO_DIALECT_2018;
  worker_start((const char *const[]){"--bug", "missing-server-header", NULL});
  conn_open();
  check_server_headers(true);
}
END_TEST

/* ---- seeds C and G: handlers as background processes -------------------------------- */

/* BG-01 (2018): one replication-<CMD> process per accepted line, RDATA per stream, batch
 * lines included; LC-01/LC-02: their log lines carry "<desc>-<n>". */
START_TEST(test_2018_handlers_are_background_processes) {
  dialect = PROTO_DIALECT_2018;
  worker_start(NULL);
  conn_open();
  conn_send("PING 1\nPOSITION typing 3\nRDATA typing batch " TYPING_ROW
            "\nRDATA typing 5 " TYPING_ROW "\n");
  char series[256];
  int64_t deadline = rc_clock_mono_ms() + 2000;
  ck_assert_msg(
      scrape_until(starts("replication-RDATA-typing", series, sizeof series), 2, deadline) == 2,
      "BG-01\n  Expected: %s 2 (a batch line and its closing line)", series);
  ck_assert(scrape(starts("replication-SERVER", series, sizeof series)) == 1);
  ck_assert(scrape(starts("replication-POSITION", series, sizeof series)) == 1);
  ck_assert(scrape(starts("replication-PING", series, sizeof series)) >= 1);
  ck_assert(scrape(in_flight("replication-RDATA-typing", series, sizeof series)) == 0);
  ck_assert(!metrics_mention("_total"));
  ck_assert_msg(
      log_has(" - INFO - replication-POSITION-0 - Position of stream typing is now 3\n") &&
          log_has(" - INFO - replication-RDATA-typing-1 - Received rdata typing -> 5\n"),
      "LC-01\n  Expected: handler log lines under replication-<CMD>-<n>\n  Actual log:\n%s",
      log_text());
}
END_TEST

/* BG-02 (modern): process-replication-data for RDATA and POSITION, nothing per PING. */
START_TEST(test_modern_handlers_are_background_processes) {
  dialect = PROTO_DIALECT_MODERN;
  worker_start(NULL);
  conn_open();
  conn_send("PING 1\nRDATA typing master 5 " TYPING_ROW "\n");
  char series[256];
  ck_assert(log_wait("Received rdata typing (master) -> 5", rc_clock_mono_ms() + 2000) >= 0);
  double count = scrape(starts("process-replication-data", series, sizeof series));
  ck_assert_msg(count >= 1 && count <= 3, "BG-02: %s = %.0f after 3 lines", series, count);
  ck_assert(scrape(in_flight("process-replication-data", series, sizeof series)) == 0);
  ck_assert(!metrics_mention("replication-PING") && !metrics_mention("replication-RDATA"));
  ck_assert(log_has(" - process-replication-data-"));
}
END_TEST

START_TEST(test_bug_handlers_not_background) {
  dialect = _i == 0 ? PROTO_DIALECT_2018 : PROTO_DIALECT_MODERN;
  worker_start((const char *const[]){"--bug", "handlers-not-background", NULL});
  conn_open();
  conn_send(dialect == PROTO_DIALECT_MODERN ? "RDATA typing master 5 " TYPING_ROW "\n"
                                            : "RDATA typing 5 " TYPING_ROW "\n");
  const char *applied = dialect == PROTO_DIALECT_MODERN
                            ? " - sentinel - Received rdata typing (master) -> 5\n"
                            : " - sentinel - Received rdata typing -> 5\n";
  ck_assert_msg(log_wait(applied, rc_clock_mono_ms() + 2000) >= 0,
                "handlers-not-background\n  Expected: '%s' in the log\n  Actual:\n%s", applied,
                log_text());
  ck_assert(!metrics_mention("replication-") && !metrics_mention("process-replication-data"));
  /* The rest is unchanged: the listener still serves metrics with the right header. */
  check_server_headers(false);
}
END_TEST

/* BG-05, BG-06, BG-07: a row that does not fit its layout makes the handler raise; it is
 * logged at once at ERROR with a traceback in the handling context, and processing
 * goes on. */
START_TEST(test_handler_exception_logged_at_once) {
  dialect = _i == 0 ? PROTO_DIALECT_2018 : PROTO_DIALECT_MODERN;
  bool modern = dialect == PROTO_DIALECT_MODERN;
  worker_start(NULL);
  conn_open();
  conn_send(modern ? "RDATA typing master 7 " BAD_TYPING_ROW "\n"
                   : "RDATA typing 7 " BAD_TYPING_ROW "\n");
  const char *expected =
      modern
          ? " - ERROR - process-replication-data-"
          : " - ERROR - replication-RDATA-typing-0 - Background process "
            "'replication-RDATA-typing' threw an exception\nTraceback (most recent call last):\n";
  int64_t waited = log_wait(expected, rc_clock_mono_ms() + 1000);
  ck_assert_msg(waited >= 0, "BG-05\n  Expected: '%s' within 1 s\n  Actual log:\n%s", expected,
                log_text());
  if (modern)
    ck_assert_msg(log_has(" - Failed to handle command RDATA typing master 7 " BAD_TYPING_ROW
                          "\nTraceback (most recent call last):\n"),
                  "BG-05 (modern text)\n  Actual log:\n%s", log_text());
  else
    ck_assert_msg(log_has("] Failed to parse RDATA: 'typing' '" BAD_TYPING_ROW "'\nTraceback"),
                  "BG-05 (2018 parse line)\n  Actual log:\n%s", log_text());
  /* BG-06: still connected, later lines of the stream applied. */
  conn_send(modern ? "RDATA typing master 8 " TYPING_ROW "\n" : "RDATA typing 8 " TYPING_ROW "\n");
  ck_assert(log_wait(modern ? "Received rdata typing (master) -> 8" : "Received rdata typing -> 8",
                     rc_clock_mono_ms() + 2000) >= 0);
  char line[PROTO_MAX_LINE + 1];
  int64_t deadline = rc_clock_mono_ms() + 500;
  while (conn_read_line(line, sizeof line, deadline))
    ck_assert_msg(strncmp(line, "PING", 4) == 0, "BG-06: unexpected '%s'", line);
  ck_assert_msg(poll(&(struct pollfd){.fd = conn_fd, .events = POLLRDHUP}, 1, 0) == 0,
                "BG-06: the connection was closed");
  /* BG-07: no Twisted report, ever. */
  poll(NULL, 0, 2300);
  ck_assert(!log_has("Unhandled error in Deferred"));
}
END_TEST

START_TEST(test_bug_unhandled_background_error) {
  dialect = _i == 0 ? PROTO_DIALECT_2018 : PROTO_DIALECT_MODERN;
  bool modern = dialect == PROTO_DIALECT_MODERN;
  worker_start((const char *const[]){"--bug", "unhandled-background-error", NULL});
  conn_open();
  conn_send(modern ? "RDATA typing master 7 " BAD_TYPING_ROW "\n"
                   : "RDATA typing 7 " BAD_TYPING_ROW "\n");
  int64_t sent = rc_clock_mono_ms();
  ck_assert(log_wait(" - twisted - ", sent + 4000) >= 0);
  int64_t after = rc_clock_mono_ms() - sent;
  ck_assert_msg(after >= 1500, "bug G: the report came %lld ms after the line, expected ~2 s",
                (long long)after);
  ck_assert_msg(log_has(" - CRITICAL - sentinel - Unhandled error in Deferred:\n") &&
                    !log_has("threw an exception") && !log_has("Failed to handle command"),
                "bug G\n  Expected: only Twisted's CRITICAL report\n  Actual log:\n%s", log_text());
}
END_TEST

/* ---- seed D: in flight until the work is done -------------------------------------- */

/* Accepts the worker's next request at the fake main's HTTP port (its catch-up GET, or
 * a federation transaction when it plays a remote) and reads it whole, headers and any
 * Content-Length body. Returns the socket, for http_peer_answer. */
static int http_peer_accept(char *request, size_t cap, int64_t deadline, const char *what) {
  struct pollfd p = {.fd = http_listen_fd, .events = POLLIN};
  ck_assert_msg(poll(&p, 1, poll_ms(deadline)) == 1, "no %s reached the fake server", what);
  int fd = accept4(http_listen_fd, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  size_t len = 0;
  request[0] = '\0';
  for (;;) {
    char *end = strstr(request, "\r\n\r\n");
    const char *cl = strcasestr(request, "\r\nContent-Length:");
    size_t body = cl != NULL ? (size_t)atoi(cl + 17) : 0;
    if (end != NULL && len >= (size_t)(end + 4 - request) + body) return fd;
    struct pollfd q = {.fd = fd, .events = POLLIN};
    ck_assert(poll(&q, 1, poll_ms(deadline)) == 1);
    ssize_t got = recv(fd, request + len, cap - len - 1, 0);
    ck_assert(got > 0 && len + (size_t)got < cap - 1);
    len += (size_t)got;
    request[len] = '\0';
  }
}

static void http_peer_answer(int fd, const char *body) {
  char reply[1024];
  int n = snprintf(reply, sizeof reply,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n%s",
                   strlen(body), body);
  ck_assert(send(fd, reply, (size_t)n, MSG_NOSIGNAL) == n);
  close(fd);
}

static void check_in_flight_during_catchup(bool bug) {
  dialect = PROTO_DIALECT_MODERN;
  worker_start(bug ? (const char *const[]){"--bug", "fire-and-forget", NULL} : NULL);
  conn_open();
  /* typing is at 1; a POSITION 5..9 shows rows (1, 9] missing: a catch-up. */
  conn_send("POSITION typing master 5 9\n");
  char request[4096] = "";
  int fd = http_peer_accept(request, sizeof request, rc_clock_mono_ms() + 2000 + 5 * margin_ms,
                            "catch-up request");
  ck_assert_msg(
      strstr(request, "GET /_synapse/replication/get_repl_stream_updates/typing/") == request, "%s",
      request);
  char series[256];
  in_flight("process-replication-data", series, sizeof series);
  /* Held for a while: BG-03 wants the handling process in flight all along. */
  int64_t until = rc_clock_mono_ms() + 800;
  while (rc_clock_mono_ms() < until) {
    double v = scrape(series);
    ck_assert_msg(bug ? v == 0 : v == 1,
                  "%s\n  Expected: %s %s while the catch-up is pending\n  Actual: %.0f",
                  bug ? "fire-and-forget (bug D)" : "BG-03", series, bug ? "0" : "1", v);
    poll(NULL, 0, 100);
  }
  http_peer_answer(fd,
                   "{\"updates\": [[9, " TYPING_ROW "]], \"upto_token\": 9, \"limited\": false}");
  ck_assert(log_wait("Caught up with stream 'typing' to 9", rc_clock_mono_ms() + 2000) >= 0);
  ck_assert_msg(scrape_until(series, 0, rc_clock_mono_ms() + 1000) == 0,
                "BG-03/BG-09: %s back to 0 after the catch-up", series);
  /* The work logged under the process that started it, in flight or not. */
  char *log = log_text();
  const char *fetching = strstr(log, " - Fetching replication rows for 'typing'");
  ck_assert_ptr_nonnull(fetching);
  const char *context = fetching;
  while (context > log && strncmp(context, " - process-replication-data-", 28) != 0) context--;
  char expected[128];
  snprintf(expected, sizeof expected, "%.*s - Caught up with stream 'typing' to 9\n",
           (int)(fetching - context), context);
  ck_assert_msg(strstr(log, expected) != NULL, "LC-01: expected '%s' in\n%s", expected, log);
  free(log);
}

START_TEST(test_in_flight_until_catchup_done) {
  check_in_flight_during_catchup(false);
}
END_TEST

START_TEST(test_bug_fire_and_forget) {
  check_in_flight_during_catchup(true);
}
END_TEST

/* ---- seed A: expiring caches --------------------------------------------------------- */

static void send_device_rows(int first, int count, int token) {
  for (int i = first; i < first + count; i++) {
    if (dialect == PROTO_DIALECT_MODERN)
      conn_send("RDATA device_lists master %d [\"@u%d:test\",false,false]\n", token++, i);
    else
      conn_send("RDATA device_lists %d [\"@u%d:test\",false,false]\n", token++, i);
  }
}

static const char *cache_series(const char *family, const char *extra, char *buf, size_t cap) {
  bool modern = dialect == PROTO_DIALECT_MODERN;
  snprintf(buf, cap, "synapse_util_caches_cache%s%s{name=\"device_updates\"%s}", modern ? "_" : ":",
           family, modern ? extra : "");
  return buf;
}

START_TEST(test_cache_expires_without_start) {
  dialect = _i == 0 ? PROTO_DIALECT_2018 : PROTO_DIALECT_MODERN;
  worker_start((const char *const[]){"--cache", "device_updates:800:3", NULL});
  conn_open();
  char size[256], evicted[256], prune[256];
  cache_series("size", "", size, sizeof size);
  cache_series("evicted_size", ",reason=\"size\"", evicted, sizeof evicted);
  starts("prune_cache_device_updates", prune, sizeof prune);
  send_device_rows(1, 5, 2);
  int64_t sent = rc_clock_mono_ms();
  ck_assert_msg(scrape_until(size, 3, sent + 2000) == 3, "CA-05: %s must be 3", size);
  ck_assert_msg(scrape(evicted) == 2, "CA-05: %s must be 2", evicted);
  response_t r;
  http_request("GET", "/_refworker/cache/device_updates/%40u5%3Atest", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_str_eq(r.body, "{\"value\": [\"@u5:test\",false,false]}");
  free(r.body);
  http_request("GET", "/_refworker/cache/device_updates/@u1:test", &r);
  ck_assert_int_eq(r.status, 404);
  free(r.body);
  /* CA-01, CA-02: reaped by time, with no further input, within 1.5 E + margin. */
  ck_assert_msg(scrape_until(size, 0, sent + 1200 + 2 * margin_ms) == 0,
                "CA-02\n  Expected: %s 0 within 1.5 E\n  Actual: %.0f", size, scrape(size));
  ck_assert(rc_clock_mono_ms() - sent >= 700);
  char time_evicted[256];
  if (dialect == PROTO_DIALECT_MODERN)
    cache_series("evicted_size", ",reason=\"time\"", time_evicted, sizeof time_evicted);
  double evicted_time = scrape(dialect == PROTO_DIALECT_MODERN ? time_evicted : evicted);
  ck_assert_msg(evicted_time == (dialect == PROTO_DIALECT_MODERN ? 3 : 5),
                "CA-04: time evictions counted, got %.0f", evicted_time);
  ck_assert_msg(scrape(prune) >= 2, "CA-01: %s", prune);
  char idle[256];
  ck_assert(scrape(in_flight("prune_cache_device_updates", idle, sizeof idle)) == 0);
}
END_TEST

START_TEST(test_bug_cache_needs_start) {
  dialect = _i == 0 ? PROTO_DIALECT_2018 : PROTO_DIALECT_MODERN;
  worker_start(
      (const char *const[]){"--cache", "device_updates:400:3", "--bug", "cache-needs-start", NULL});
  conn_open();
  char size[256];
  cache_series("size", "", size, sizeof size);
  send_device_rows(1, 2, 2);
  ck_assert(scrape_until(size, 2, rc_clock_mono_ms() + 2000) == 2);
  poll(NULL, 0, 1200);
  ck_assert_msg(scrape(size) == 2 && !metrics_mention("prune_cache_"),
                "cache-needs-start (bug A)\n  Expected: no reaping, no prune_cache_* series");
  /* Size evictions still work: only the reaper is missing. */
  send_device_rows(3, 3, 4);
  ck_assert(scrape_until(size, 3, rc_clock_mono_ms() + 2000) == 3);
}
END_TEST

/* ---- seed H: the federation sender ------------------------------------------------ */

static void member_row(int token, const char *user) {
  conn_send("RDATA events %d [\"ev\",[\"$e%d\",\"!a:" SERVER_NAME
            "\",\"m.room.member\",\"%s\","
            "null,null,\"join\",false,false]]\n",
            token, token, user);
}

/* PR-01, PR-04, OUT-09 end to end (2018): membership from events rows, one presence row,
 * one transaction to the member's server, then FEDERATION_ACK. With the bug: one per
 * member of that server. */
static void check_presence_fan_out(bool bug) {
  dialect = PROTO_DIALECT_2018;
  char remote[128];
  snprintf(remote, sizeof remote, "r1.test=http://127.0.0.1:%d", http_listen_port);
  const char *plain[] = {"--fedsender", "--remote", remote, NULL};
  const char *buggy[] = {"--fedsender", "--remote", remote, "--bug", "presence-per-destination",
                         NULL};
  worker_start(bug ? buggy : plain);
  conn_open();
  member_row(2, "@alice:" SERVER_NAME);
  member_row(3, "@bob:r1.test");
  member_row(4, "@carol:r1.test");
  conn_send("RDATA federation 5 [\"p\",{\"user_id\":\"@alice:" SERVER_NAME
            "\",\"state\":\"online\","
            "\"last_active_ts\":0,\"last_federation_update_ts\":0,\"last_user_sync_ts\":0,"
            "\"status_msg\":null,\"currently_active\":true}]\n");
  char line[PROTO_MAX_LINE + 1];
  int64_t deadline = rc_clock_mono_ms() + 2000 + 5 * margin_ms;
  bool acked = false;
  while (!acked && conn_read_line(line, sizeof line, deadline))
    acked = strcmp(line, "FEDERATION_ACK 5") == 0;
  ck_assert_msg(acked, "OUT-09\n  Expected: FEDERATION_ACK 5 after the federation row");
  char request[8192];
  int64_t deadline_put = rc_clock_mono_ms() + 2000 + 5 * margin_ms;
  http_peer_answer(http_peer_accept(request, sizeof request, deadline_put, "transaction"),
                   "{\"pdus\":{}}");
  ck_assert_msg(strncmp(request, "PUT /_matrix/federation/v1/send/", 32) == 0, "%s", request);
  ck_assert_msg(strstr(request, "\"origin\":\"" SERVER_NAME "\"") != NULL &&
                    strstr(request, "\"edu_type\":\"m.presence\"") != NULL &&
                    strstr(request, "\"user_id\":\"@alice:" SERVER_NAME "\"") != NULL &&
                    strstr(request, "\"presence\":\"online\"") != NULL,
                "PR-04: transaction body\n%s", request);
  struct pollfd p = {.fd = http_listen_fd, .events = POLLIN};
  if (bug) {
    http_peer_answer(
        http_peer_accept(request, sizeof request, deadline_put + 2000, "2nd transaction"),
        "{\"pdus\":{}}");
  } else {
    ck_assert_msg(poll(&p, 1, 500) == 0, "PR-01: a second transaction for one update");
  }
}

START_TEST(test_presence_fan_out) {
  check_presence_fan_out(false);
}
END_TEST

START_TEST(test_bug_presence_per_destination) {
  check_presence_fan_out(true);
}
END_TEST

static Suite *seeds_suite(void) {
  Suite *s = suite_create("refworker_seeds");
  TCase *tc = tcase_create("seeds");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_server_header_everywhere, 0, 2);
  tcase_add_test(tc, test_bug_missing_server_header);
  tcase_add_test(tc, test_2018_handlers_are_background_processes);
  tcase_add_test(tc, test_modern_handlers_are_background_processes);
  tcase_add_loop_test(tc, test_bug_handlers_not_background, 0, 2);
  tcase_add_loop_test(tc, test_handler_exception_logged_at_once, 0, 2);
  tcase_add_loop_test(tc, test_bug_unhandled_background_error, 0, 2);
  tcase_add_test(tc, test_in_flight_until_catchup_done);
  tcase_add_test(tc, test_bug_fire_and_forget);
  tcase_add_loop_test(tc, test_cache_expires_without_start, 0, 2);
  tcase_add_loop_test(tc, test_bug_cache_needs_start, 0, 2);
  tcase_add_test(tc, test_presence_fan_out);
  tcase_add_test(tc, test_bug_presence_per_destination);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(seeds_suite());
}

/* Integration tests of refworker's Redis transport (reference/redis_transport.c,
 * redis_client.c): the real binary against a real redis-server on a free loopback port
 * (harness/redis_server.h), observed from this process through hiredis: a MONITOR
 * connection (every command of every client, in execution order), CLIENT LIST, and our
 * own PUBLISHes as the main process would send them. The main's HTTP side
 * (mock_server/mock_http.h) runs on this process's event loop for catch-ups.
 *
 * Each test names the requirement it checks (shared/spec/requirements.md §8 RE-xx, and
 * the stream rules of §5/§6 over a subscription) and the upstream source it encodes
 * (synapse redis.py@v1.67.0; traces reference/synapse-1.67-redis/); failures print
 * Requirement / Expected / Actual. Every wait has a deadline and keeps the event loop
 * running. REFWORKER_TEST_MARGIN_MS and REFWORKER_TEST_WRAPPER as in test_refworker.c. */
#include <check.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/event.h>

#include "ledger.h"
#include "mock_http.h"
#include "rc_clock.h"
#include "redis_server.h"
#include "stream_history.h"
#include "test_support.h"

#define CHANNEL "test.local"
#define INSTANCE "worker1"
#define ROW "[\"!r:hs\",[\"@x:hs\"]]"
#define TEST_CLIENT "replcheck-test-" /* CLIENT SETNAME prefix of our own connections */

static struct event_base *base;
static ledger_t *ledger;
static stream_history_t *history;
static mock_http_t *http;
static redis_server_t *server;
static char *temp_dir;
static char *log_path;
static pid_t child = -1;
static int64_t margin_ms;

/* MONITOR output so far, one command per line: `<ts> [0 <addr>] "CMD" "arg"...`, without
 * the commands of the test's own connections (known by their CLIENT SETNAME). */
static redisContext *monitor;
static char **seen;
static size_t seen_count;
static char test_addrs[64][64];
static size_t test_addr_count;

/* ---- redis connections of the test ------------------------------------------------- */

static redisContext *redis_open(const char *name) {
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_server_port(server), tv);
  ck_assert_msg(c != NULL && !c->err, "cannot connect to the test's redis-server: %s",
                c ? c->errstr : "out of memory");
  redisReply *r = redisCommand(c, "CLIENT SETNAME %s%s", TEST_CLIENT, name);
  ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STATUS, "CLIENT SETNAME failed");
  freeReplyObject(r);
  return c;
}

/* The next reply on c within timeout_ms, running the event loop meanwhile; NULL at
 * the deadline or when the connection is gone. */
static redisReply *redis_next(redisContext *c, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    void *reply = NULL;
    if (redisGetReplyFromReader(c, &reply) != REDIS_OK) return NULL;
    if (reply != NULL) return reply;
    event_base_loop(base, EVLOOP_NONBLOCK);
    int64_t left = deadline - rc_clock_mono_ms();
    if (left <= 0) return NULL;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n = poll(&p, 1, left < 10 ? (int)left : 10);
    if (n > 0 && redisBufferRead(c) != REDIS_OK) return NULL;
  }
}

static void monitor_start(void) {
  monitor = redis_open("monitor");
  redisReply *r = redisCommand(monitor, "MONITOR");
  ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STATUS, "MONITOR failed");
  freeReplyObject(r);
}

static void line_client(const char *line, char *out, size_t cap) {
  const char *open = strchr(line, '[');
  const char *close = open ? strchr(open, ']') : NULL;
  snprintf(out, cap, "%.*s", close ? (int)(close - open + 1) : 0, open ? open : "");
}

static void monitor_record(const char *line) {
  char addr[64];
  line_client(line, addr, sizeof addr);
  if (strstr(line, "\"CLIENT\" \"SETNAME\" \"" TEST_CLIENT) != NULL) {
    if (test_addr_count < 64) snprintf(test_addrs[test_addr_count++], 64, "%s", addr);
    return;
  }
  for (size_t i = 0; i < test_addr_count; i++)
    if (strcmp(test_addrs[i], addr) == 0) return;
  char **grown = realloc(seen, (seen_count + 1) * sizeof *grown);
  ck_assert_ptr_nonnull(grown);
  seen = grown;
  seen[seen_count++] = strdup(line);
}

/* Reads MONITOR lines for duration_ms (just runs the loop while there is no monitor). */
static void monitor_drain(int duration_ms) {
  int64_t deadline = rc_clock_mono_ms() + duration_ms;
  while (monitor == NULL && rc_clock_mono_ms() < deadline) {
    event_base_loop(base, EVLOOP_NONBLOCK);
    poll(NULL, 0, 5);
  }
  for (;;) {
    if (monitor == NULL) return;
    int64_t left = deadline - rc_clock_mono_ms();
    redisReply *r = redis_next(monitor, left > 0 ? (int)left : 0);
    if (r == NULL) return;
    if (r->type == REDIS_REPLY_STATUS) monitor_record(r->str);
    freeReplyObject(r);
  }
}

/* Index of the first MONITOR line at or after `from` containing needle, or -1; reads
 * more lines until timeout_ms. */
static long monitor_find(size_t from, const char *needle, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    for (size_t i = from; i < seen_count; i++)
      if (strstr(seen[i], needle) != NULL) return (long)i;
    int64_t left = deadline - rc_clock_mono_ms();
    if (left <= 0) return -1;
    monitor_drain(left < 20 ? (int)left : 20);
  }
}

/* "[0 127.0.0.1:34996]" of a MONITOR line: which client sent it. */
static void monitor_client(long index, char *out, size_t cap) {
  line_client(seen[index], out, cap);
}

static void publish(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void publish(const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  redisContext *c = redis_open("publisher");
  redisReply *r = redisCommand(c, "PUBLISH %s %s", CHANNEL, message);
  ck_assert_msg(r != NULL && r->type == REDIS_REPLY_INTEGER, "PUBLISH failed");
  freeReplyObject(r);
  redisFree(c);
}

/* The worker's connections in CLIENT LIST: how many, how many subscribed to exactly one
 * channel (flags=P sub=1), how many plain (flags=N). */
static int worker_clients(int *subscribed_one, int *plain, char *listing, size_t cap) {
  redisContext *c = redis_open("lister");
  redisReply *r = redisCommand(c, "CLIENT LIST");
  ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STRING, "CLIENT LIST failed");
  int count = 0;
  *subscribed_one = *plain = 0;
  listing[0] = '\0';
  for (char *save = NULL, *l = strtok_r(r->str, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save)) {
    if (strstr(l, "name=" TEST_CLIENT) != NULL) continue;
    count++;
    size_t at = strlen(listing);
    snprintf(listing + at, cap - at, "%s%.160s", at ? " | " : "", l);
    if (strstr(l, " flags=P ") != NULL && strstr(l, " sub=1 ") != NULL) (*subscribed_one)++;
    if (strstr(l, " flags=N ") != NULL && strstr(l, " sub=0 ") != NULL) (*plain)++;
  }
  freeReplyObject(r);
  redisFree(c);
  return count;
}

/* ---- fixture --------------------------------------------------------------------- */

static void setup(void) {
  const char *margin = getenv("REFWORKER_TEST_MARGIN_MS");
  margin_ms = margin != NULL && atoi(margin) > 0 ? atoi(margin) : 400;
  temp_dir = test_make_temp_dir("test_refworker_redis");
  ck_assert_ptr_nonnull(temp_dir);
  log_path = test_path(temp_dir, "worker.log");
  base = event_base_new();
  ledger = ledger_create(0);
  history = stream_history_create();
  ck_assert(base != NULL && ledger != NULL && history != NULL);
  ck_assert_int_eq(stream_history_set(history, "typing", 0), 0);
  rc_error_t err;
  http = mock_http_create(base, 0, history, ledger, &err);
  ck_assert_msg(http != NULL, "mock HTTP: %s", err.msg);
  server = redis_server_start(temp_dir, 5000, &err);
  ck_assert_msg(server != NULL, "%s", err.msg);
  seen = NULL;
  seen_count = 0;
  test_addr_count = 0;
  monitor_start();
}

static bool worker_exited(int *status, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  while (rc_clock_mono_ms() < deadline) {
    if (waitpid(child, status, WNOHANG) == child) return true;
    event_base_loop(base, EVLOOP_NONBLOCK);
    poll(NULL, 0, 10);
  }
  return false;
}

static void teardown(void) {
  int status = 0;
  bool exited = true;
  if (child > 0) {
    kill(child, SIGTERM);
    exited = worker_exited(&status, (int)(5000 + 10 * margin_ms));
    if (!exited) {
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
    }
    child = -1;
  }
  if (monitor != NULL) redisFree(monitor);
  monitor = NULL;
  for (size_t i = 0; i < seen_count; i++) free(seen[i]);
  free(seen);
  seen = NULL;
  seen_count = 0;
  redis_server_stop(server);
  mock_http_destroy(http);
  stream_history_destroy(history);
  ledger_destroy(ledger);
  event_base_free(base);
  test_remove_tree(temp_dir);
  free(temp_dir);
  free(log_path);
  ck_assert_msg(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "CL-05 (orderly exit on SIGTERM)\n  Expected: exit status 0\n  Actual: %s %d",
                !exited             ? "still running, status"
                : WIFEXITED(status) ? "exit"
                                    : "signal",
                !exited             ? -1
                : WIFEXITED(status) ? WEXITSTATUS(status)
                                    : WTERMSIG(status));
}

/* Starts refworker over the test's redis-server, consuming typing from 3, with `extra`
 * arguments (NULL-terminated, may be NULL). */
static void worker_start_with(const char *reconnect_initial, const char *reconnect_max,
                              const char *const *extra) {
  char redis[64], url[64];
  snprintf(redis, sizeof redis, "127.0.0.1:%d", redis_server_port(server));
  snprintf(url, sizeof url, "http://127.0.0.1:%d", mock_http_port(http));
  char *bin = test_path(test_env("REPLCHECK_BIN_DIR"), "refworker");
  const char *argv[64];
  size_t argc = 0;
  const char *fixed[] = {bin,
                         "--redis",
                         redis,
                         "--http-url",
                         url,
                         "--server-name",
                         CHANNEL,
                         "--dialect",
                         "modern",
                         "--log",
                         log_path,
                         "--instance-name",
                         INSTANCE,
                         "--stream",
                         "typing=3",
                         "--reconnect-initial-ms",
                         reconnect_initial,
                         "--reconnect-max-ms",
                         reconnect_max,
                         "--redis-ping-interval-ms",
                         "300"};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[argc++] = fixed[i];
  for (size_t i = 0; extra != NULL && extra[i] != NULL && argc < 63; i++) argv[argc++] = extra[i];
  argv[argc] = NULL;
  child = test_spawn_wrapped(argv);
  free(bin);
}

/* ---- the worker's log -------------------------------------------------------------- */

static char *log_read(void) {
  return test_log_read(log_path);
}

static long log_offset(const char *needle) {
  return test_log_offset(log_path, needle);
}

static bool log_contains(const char *needle) {
  return log_offset(needle) >= 0;
}

static size_t log_count(const char *needle) {
  return test_log_count(log_path, needle);
}

/* Waits (running the loop and reading MONITOR) until the log has needle `count` times. */
static void expect_log_count(const char *needle, size_t count, int timeout_ms,
                             const char *requirement) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  while (log_count(needle) < count && rc_clock_mono_ms() < deadline) monitor_drain(10);
  if (log_count(needle) >= count) return;
  char *text = log_read();
  size_t len = strlen(text);
  ck_assert_msg(false,
                "%s\n  Expected: '%s' in the worker's log%s\n  Actual: not within %d ms;"
                " the log ends with:\n%s",
                requirement, needle, count > 1 ? " again" : "", timeout_ms,
                text + (len > 1500 ? len - 1500 : 0));
  free(text);
}

static void expect_log(const char *needle, int timeout_ms, const char *requirement) {
  expect_log_count(needle, 1, timeout_ms, requirement);
}

/* Starts the worker (with extra arguments, may be NULL) and waits for its REPLICATE;
 * returns the MONITOR index of it. */
static long start_subscribed_with(const char *initial, const char *max, const char *const *extra) {
  worker_start_with(initial, max, extra);
  long replicate =
      monitor_find(0, "\"PUBLISH\" \"" CHANNEL "\" \"REPLICATE \"", (int)(5000 + 5 * margin_ms));
  ck_assert_msg(replicate >= 0, "RE-02\n  Expected: PUBLISH " CHANNEL
                                " 'REPLICATE '\n"
                                "  Actual: not within the startup window");
  return replicate;
}

static long start_subscribed(const char *initial, const char *max) {
  return start_subscribed_with(initial, max, NULL);
}

/* How many PUBLISHes the worker made from MONITOR index `from` on. */
static size_t worker_publishes_since(size_t from) {
  size_t n = 0;
  for (size_t i = from; i < seen_count; i++)
    if (strstr(seen[i], "\"PUBLISH\"") != NULL) n++;
  return n;
}

/* How many MONITOR lines from index `from` on contain needle. */
static size_t monitor_count_since(size_t from, const char *needle) {
  size_t n = 0;
  for (size_t i = from; i < seen_count; i++)
    if (strstr(seen[i], needle) != NULL) n++;
  return n;
}

/* The worker's announcement of its caches position N (RE-02, RE-04). */
#define OWN_CACHES_POSITION(n) \
  "\"PUBLISH\" \"" CHANNEL "\" \"POSITION caches " INSTANCE " " n " " n "\""

/* Waits (reading MONITOR) until `count` announcements of caches position n were published
 * from index `from` on, up to timeout_ms; returns how many there were. */
static size_t expect_own_positions(size_t from, const char *announcement, size_t count,
                                   int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  while (monitor_count_since(from, announcement) < count && rc_clock_mono_ms() < deadline)
    monitor_drain(10);
  return monitor_count_since(from, announcement);
}

/* ---- tests --------------------------------------------------------------------------- */

/* RE-01, RE-02, RE-03: two connections, one subscribed to exactly the channel named like
 * the server, one plain; REPLICATE is published by the other connection only after the
 * SUBSCRIBE, and it is the first thing published. Upstream: redis.py@v1.67.0
 * RedisSubscriber._send_subscribe; traces pubsub-transcript monitor-1, client-list-now. */
START_TEST(test_handshake) {
  long replicate = start_subscribed("50", "250");
  long subscribe = monitor_find(0, "\"SUBSCRIBE\" \"" CHANNEL "\"", 0);
  ck_assert_msg(subscribe >= 0 && subscribe < replicate,
                "RE-02 (REPLICATE only after the SUBSCRIBE)\n  Expected: SUBSCRIBE " CHANNEL
                " before PUBLISH REPLICATE\n  Actual: SUBSCRIBE at %ld, REPLICATE at %ld",
                subscribe, replicate);
  ck_assert_msg(
      strcmp(strstr(seen[subscribe], "\"SUBSCRIBE\""), "\"SUBSCRIBE\" \"" CHANNEL "\"") == 0,
      "RE-01 (exactly the channel <server_name>)\n  Actual: '%s'", seen[subscribe]);
  char sub_client[64], pub_client[64];
  monitor_client(subscribe, sub_client, sizeof sub_client);
  monitor_client(replicate, pub_client, sizeof pub_client);
  ck_assert_msg(strcmp(sub_client, pub_client) != 0,
                "RE-01 (PUBLISH on the other connection)\n  Actual: both from %s", sub_client);
  size_t up_to = worker_publishes_since(0) - worker_publishes_since((size_t)replicate + 1);
  ck_assert_msg(up_to == 1,
                "RE-02 (REPLICATE is the first message published)\n  Actual: %zu PUBLISHes "
                "up to it",
                up_to);
  expect_log("Successfully subscribed to redis stream, sending REPLICATE command", (int)margin_ms,
             "RE-02");
  int subscribed = 0, plain = 0;
  char listing[2048];
  int count = worker_clients(&subscribed, &plain, listing, sizeof listing);
  ck_assert_msg(count == 2 && subscribed == 1 && plain == 1,
                "RE-01 (exactly two connections: one subscribed to one channel, one plain)\n"
                "  Actual: %s",
                listing);
  /* RE-03: nothing else goes out, in particular no NAME, SERVER, PING or ERROR line. */
  monitor_drain(500);
  for (size_t i = 0; i < seen_count; i++) {
    const char *pub = strstr(seen[i], "\"PUBLISH\" \"" CHANNEL "\" \"");
    if (pub == NULL) continue;
    const char *msg = pub + strlen("\"PUBLISH\" \"" CHANNEL "\" \"");
    ck_assert_msg(strncmp(msg, "NAME", 4) != 0 && strncmp(msg, "SERVER", 6) != 0 &&
                      strncmp(msg, "PING", 4) != 0 && strncmp(msg, "ERROR", 5) != 0 &&
                      strchr(msg, '\n') == NULL,
                  "RE-03\n  Expected: only REPLICATE/POSITION published\n  Actual: '%s'", seen[i]);
  }
}
END_TEST

/* Reads MONITOR for 1 s (+ margin) and counts the PINGs of the subscriber (the client
 * that SUBSCRIBEd) and of the publisher (the one that published REPLICATE at index
 * `replicate`). */
static void count_pings(long replicate, int *sub_pings, int *pub_pings) {
  long subscribe = monitor_find(0, "\"SUBSCRIBE\"", 0);
  char sub_client[64], pub_client[64];
  monitor_client(subscribe, sub_client, sizeof sub_client);
  monitor_client(replicate, pub_client, sizeof pub_client);
  monitor_drain((int)(1000 + margin_ms));
  *sub_pings = *pub_pings = 0;
  for (size_t i = 0; i < seen_count; i++) {
    if (strstr(seen[i], "\"PING\"") == NULL) continue;
    if (strstr(seen[i], sub_client) != NULL) (*sub_pings)++;
    if (strstr(seen[i], pub_client) != NULL) (*pub_pings)++;
  }
}

/* RE-08: a Redis-protocol PING on each of the two connections every
 * --redis-ping-interval-ms (300 ms here; Synapse: 30 s). */
START_TEST(test_keepalive) {
  long replicate = start_subscribed("50", "250");
  int sub_pings, pub_pings;
  count_pings(replicate, &sub_pings, &pub_pings);
  ck_assert_msg(sub_pings >= 2 && pub_pings >= 2,
                "RE-08 (PING on each connection every interval)\n  Expected: >= 2 PINGs each in "
                "1 s at 300 ms\n  Actual: subscriber %d, publisher %d",
                sub_pings, pub_pings);
  ck_assert(!log_contains("no reply to PING"));
  int subscribed = 0, plain = 0;
  char listing[2048];
  ck_assert_int_eq(worker_clients(&subscribed, &plain, listing, sizeof listing), 2);
}
END_TEST

/* --bug redis-subscriber-no-ping (RE-08's self-test): the publisher still pings, the
 * subscriber never does. */
START_TEST(test_bug_subscriber_no_ping) {
  static const char *const extra[] = {"--bug", "redis-subscriber-no-ping", NULL};
  long replicate = start_subscribed_with("50", "250", extra);
  int sub_pings, pub_pings;
  count_pings(replicate, &sub_pings, &pub_pings);
  ck_assert_msg(sub_pings == 0 && pub_pings >= 2, "subscriber %d, publisher %d PINGs", sub_pings,
                pub_pings);
}
END_TEST

/* RE-04, RE-05, RD-07 over Redis: our own RDATA/POSITION echoes are ignored; a REPLICATE
 * (anyone's, like our own echo) is answered with our POSITION of caches (0 here: this
 * worker consumes no caches stream); commands meant for other processes are ignored
 * without error; the subscription stays. */
START_TEST(test_echoes_and_others) {
  long replicate = start_subscribed("50", "250");
  /* One announcement after subscribing, one answering the echo of our REPLICATE. */
  ck_assert_msg(
      expect_own_positions((size_t)replicate, OWN_CACHES_POSITION("0"), 2, (int)margin_ms) == 2,
      "RE-02, RE-04\n  Expected: 'POSITION caches " INSTANCE " 0 0' twice after REPLICATE\n"
      "  Actual: %zu",
      monitor_count_since((size_t)replicate, OWN_CACHES_POSITION("0")));
  publish("POSITION typing master 3 3");
  expect_log("Caught up with stream 'typing' to 3", (int)margin_ms, "PO-01 over redis");
  publish("RDATA typing " INSTANCE " 11 " ROW);
  publish("POSITION typing " INSTANCE " 20 20");
  publish("REPLICATE ");
  publish("USER_SYNC AbCdE @alice:hs start 1533000000000");
  publish("CLEAR_USER_SYNC AbCdE");
  publish("USER_IP @alice:hs [\"syt_x\",\"10.0.0.1\",\"curl\",\"DEV\",1533000000000]");
  publish("FEDERATION_ACK fedsender1 12");
  publish("POSITION caches otherworker 4 4");
  publish("REMOTE_SERVER_UP remote.example.org");
  publish("RDATA typing master 4 " ROW);
  expect_log("Received rdata typing (master) -> 4", (int)(1000 + margin_ms),
             "RE-05 (later messages still processed)");
  ck_assert_msg(log_contains("Ignoring RDATA typing from our own instance") &&
                    log_contains("Ignoring POSITION typing from our own instance") &&
                    !log_contains("Received rdata typing (" INSTANCE ")") &&
                    !log_contains("Caught up with stream 'typing' to 20"),
                "RD-07 (own echoes ignored)\n  Expected: our instance's RDATA/POSITION ignored\n"
                "  Actual: see the log");
  ck_assert_msg(log_offset(" - ERROR - ") < 0,
                "RE-05 (no error for commands meant for others)\n  Actual: an ERROR logged");
  /* After subscribing, for our echo and for the main's REPLICATE: three in all. */
  ck_assert_msg(
      expect_own_positions((size_t)replicate, OWN_CACHES_POSITION("0"), 3, (int)margin_ms) == 3,
      "RE-04 (the published REPLICATE answered)\n  Actual: %zu announcements",
      monitor_count_since((size_t)replicate, OWN_CACHES_POSITION("0")));
  monitor_drain(300);
  ck_assert_msg(worker_publishes_since((size_t)replicate + 1) == 3,
                "RE-03, RE-04 (only our POSITIONs published)\n  Actual: %zu PUBLISHes after "
                "REPLICATE",
                worker_publishes_since((size_t)replicate + 1));
}
END_TEST

/* RE-04 with the caches stream consumed: the announced position is the highest caches
 * token the worker knows, and every REPLICATE is answered again with the current one. */
START_TEST(test_replicate_answered_with_caches_position) {
  static const char *const extra[] = {"--stream", "caches", NULL};
  long replicate = start_subscribed_with("50", "250", extra);
  ck_assert_uint_eq(
      expect_own_positions((size_t)replicate, OWN_CACHES_POSITION("0"), 2, (int)margin_ms), 2);
  publish("POSITION caches master 13 13");
  expect_log("Caught up with stream 'caches' to 13", (int)margin_ms, "PO-01");
  size_t from = seen_count;
  publish("REPLICATE ");
  ck_assert_msg(expect_own_positions(from, OWN_CACHES_POSITION("13"), 1, (int)margin_ms) == 1,
                "RE-04\n  Expected: 'POSITION caches " INSTANCE " 13 13' after a REPLICATE\n"
                "  Actual: not within %d ms",
                (int)margin_ms);
}
END_TEST

/* --bug redis-replicate-unanswered (RE-04's self-test): the POSITION after subscribing
 * still goes out, but neither the echo of our REPLICATE nor the main's is answered. */
START_TEST(test_bug_replicate_unanswered) {
  static const char *const extra[] = {"--bug", "redis-replicate-unanswered", NULL};
  long replicate = start_subscribed_with("50", "250", extra);
  ck_assert_uint_eq(
      expect_own_positions((size_t)replicate, OWN_CACHES_POSITION("0"), 1, (int)margin_ms), 1);
  publish("REPLICATE ");
  expect_log_count("Received REPLICATE; not answering it", 2, (int)margin_ms, "the bug's trace");
  monitor_drain(300);
  ck_assert_uint_eq(monitor_count_since((size_t)replicate, OWN_CACHES_POSITION("0")), 1);
}
END_TEST

/* RE-06: messages that do not parse are logged and skipped; nothing is published (no
 * ERROR over Redis); the subscription stays and later messages are processed. Upstream:
 * redis.py@v1.67.0 _parse_and_dispatch_message. */
START_TEST(test_unparsable_skipped) {
  long replicate = start_subscribed("50", "250");
  publish("HELLO world");
  publish("RDATA typing master 99 {not json");
  publish(" ");
  publish("POSITION typing master x 5");
  publish("POSITION typing master 3 3");
  expect_log("Caught up with stream 'typing' to 3", (int)(1000 + margin_ms),
             "RE-06 (later messages processed)");
  ck_assert(log_contains("Failed to parse replication line: 'HELLO world'"));
  ck_assert(log_contains("Failed to parse replication line: 'RDATA typing master 99 {not json'"));
  ck_assert(log_contains("Failed to parse replication line: 'POSITION typing master x 5'"));
  ck_assert_uint_eq(log_count("Failed to parse replication line"), 3);
  monitor_drain(300);
  ck_assert_msg(worker_publishes_since((size_t)replicate + 1) ==
                    monitor_count_since((size_t)replicate + 1, OWN_CACHES_POSITION("0")),
                "RE-06 (no ERROR published)\n  Actual: the worker published more than its "
                "POSITIONs after REPLICATE");
  ck_assert_msg(monitor_find((size_t)replicate, "\"SUBSCRIBE\"", 0) < 0 &&
                    monitor_find((size_t)replicate, "\"UNSUBSCRIBE\"", 0) < 0,
                "RE-06 (the subscription stays)");
}
END_TEST

/* RD-05, PO-01, PO-03 over Redis: RDATA before the stream's POSITION on this
 * subscription is dropped; a gap is fetched over HTTP from the worker's position and the
 * stream then applies RDATA. Upstream: handler.py@v1.67.0; trace 1.67-redis/fake-main
 * ("POSITION typing master 4 5" -> GET ...?from_token=3&upto_token=5). */
START_TEST(test_stream_rules_over_redis) {
  start_subscribed("50", "250");
  publish("RDATA typing master 4 " ROW);
  expect_log("Discarding RDATA for unconnected stream typing -> 4", (int)margin_ms, "RD-05");
  publish("POSITION typing master 3 3");
  publish("RDATA typing master 4 " ROW);
  expect_log("Received rdata typing (master) -> 4", (int)margin_ms, "PO-01");
  stream_history_append(history, "typing", 6, ROW, strlen(ROW));
  uint64_t seq = ledger_next_seq(ledger);
  publish("POSITION typing master 5 6");
  expect_log("Caught up with stream 'typing' to 6", (int)(1000 + margin_ms), "PO-03 over redis");
  const ledger_entry_t *get = NULL;
  for (uint64_t s = seq; s < ledger_next_seq(ledger) && get == NULL; s++)
    if (ledger_get(ledger, s)->kind == LEDGER_HTTP) get = ledger_get(ledger, s);
  ck_assert_msg(get != NULL && strstr(get->text, "/get_repl_stream_updates/typing/") != NULL &&
                    strstr(get->text, "?from_token=4&upto_token=6") != NULL,
                "PO-03/PO-04\n  Expected: GET .../typing/<txn>?from_token=4&upto_token=6\n"
                "  Actual: %s",
                get ? get->text : "no request");
  ck_assert(log_contains("Received rdata typing (master) -> 6"));
}
END_TEST

/* RE-09, RC-06: after redis-server restarts, both connections come back, the worker
 * subscribes again and republishes REPLICATE, and every stream is not connected until
 * its next POSITION. Reconnect delays 500..1000 ms here, so the test's observers are
 * connected to the new server before the worker. Upstream: trace 1.67-redis/monitor-2. */
START_TEST(test_redis_restart) {
  start_subscribed("500", "1000");
  publish("POSITION typing master 3 3");
  expect_log("Caught up with stream 'typing' to 3", (int)margin_ms, "PO-01");
  redisFree(monitor);
  monitor = NULL;
  for (size_t i = 0; i < seen_count; i++) free(seen[i]);
  seen_count = 0;
  test_addr_count = 0;
  redis_server_kill(server);
  expect_log("Lost connection to redis (subscriber)", (int)(1000 + margin_ms), "RE-09");
  rc_error_t err;
  ck_assert_msg(redis_server_relaunch(server, 5000, &err) == 0, "%s", err.msg);
  monitor_start();
  long replicate =
      monitor_find(0, "\"PUBLISH\" \"" CHANNEL "\" \"REPLICATE \"", (int)(5000 + 5 * margin_ms));
  ck_assert_msg(replicate >= 0,
                "RE-09\n  Expected: REPLICATE published again after the restart"
                "\n  Actual: nothing within the window");
  long subscribe = monitor_find(0, "\"SUBSCRIBE\" \"" CHANNEL "\"", 0);
  ck_assert_msg(subscribe >= 0 && subscribe < replicate,
                "RE-09/RE-02 (SUBSCRIBE again, before REPLICATE)\n  Actual: SUBSCRIBE at %ld, "
                "REPLICATE at %ld",
                subscribe, replicate);
  expect_log_count("Successfully subscribed to redis stream", 2, (int)margin_ms, "RE-09");
  publish("RDATA typing master 5 " ROW);
  expect_log("Discarding RDATA for unconnected stream typing -> 5", (int)margin_ms,
             "RC-06 (not connected on the new subscription until its POSITION)");
  publish("POSITION typing master 3 3");
  publish("RDATA typing master 5 " ROW);
  expect_log("Received rdata typing (master) -> 5", (int)margin_ms, "RE-09 (connected again)");
  int subscribed = 0, plain = 0;
  char listing[2048];
  int count = worker_clients(&subscribed, &plain, listing, sizeof listing);
  ck_assert_msg(count == 2 && subscribed == 1 && plain == 1, "RE-01 after the restart: %s",
                listing);
}
END_TEST

/* CL-05, RC-08 over Redis: SIGTERM closes both connections and exits 0; no connection
 * attempt afterwards. */
START_TEST(test_sigterm_closes_both) {
  long replicate = start_subscribed("50", "250");
  ck_assert_int_eq(kill(child, SIGTERM), 0);
  int status = 0;
  ck_assert_msg(worker_exited(&status, (int)(5000 + 10 * margin_ms)),
                "CL-05\n  Expected: exit within the grace period\n  Actual: still running");
  child = -1;
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "CL-05: exit status %d", status);
  int subscribed = 0, plain = 0;
  char listing[2048];
  ck_assert_msg(worker_clients(&subscribed, &plain, listing, sizeof listing) == 0,
                "CL-05 (both redis connections closed)\n  Actual: %s", listing);
  monitor_drain(300);
  ck_assert_msg(monitor_find((size_t)replicate + 1, "\"SUBSCRIBE\"", 0) < 0,
                "RC-08 (no new subscription after SIGTERM)");
  ck_assert(log_contains("Disconnected from redis (subscriber)"));
  ck_assert(log_contains("Disconnected from redis (publisher)"));
}
END_TEST

static Suite *redis_suite(void) {
  Suite *s = suite_create("refworker_redis");
  TCase *tc = tcase_create("redis");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_handshake);
  tcase_add_test(tc, test_keepalive);
  tcase_add_test(tc, test_echoes_and_others);
  tcase_add_test(tc, test_replicate_answered_with_caches_position);
  tcase_add_test(tc, test_bug_replicate_unanswered);
  tcase_add_test(tc, test_bug_subscriber_no_ping);
  tcase_add_test(tc, test_unparsable_skipped);
  tcase_add_test(tc, test_stream_rules_over_redis);
  tcase_add_test(tc, test_redis_restart);
  tcase_add_test(tc, test_sigterm_closes_both);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(redis_suite());
}

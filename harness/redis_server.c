#include "redis_server.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "filetail.h"
#include "rc_clock.h"
#include "rc_net.h"
#include "sut.h"

struct redis_server {
  char *dir;
  char *output;
  int port;
  sut_t *process;
};


static bool answers_ping(int port) {
  struct timeval tv = {0, 200000};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
  bool ok = false;
  if (c != NULL && !c->err) {
    redisReply *r = redisCommand(c, "PING");
    ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r != NULL) freeReplyObject(r);
  }
  if (c != NULL) redisFree(c);
  return ok;
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Launches the process on server->port and waits for PING; 0 or -1 with err. */
static int launch(redis_server_t *s, int timeout_ms, rc_error_t *err) {
  char port[16];
  snprintf(port, sizeof port, "%d", s->port);
  char *const argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", s->dir, "--protected-mode", "no", NULL};
  sut_spec_t spec = {.argv = argv, .work_dir = s->dir, .output_path = s->output};
  s->process = sut_start(&spec, err);
  if (s->process == NULL) {
    rc_error_prefix(err, "cannot start redis-server (run ci/install-deps.sh)");
    return -1;
  }
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  while (rc_clock_mono_ms() < deadline) {
    if (answers_ping(s->port)) return 0;
    int status;
    if (sut_has_exited(s->process, &status)) break;
    pause_ms(10); /* polling a process we just started; bounded by the deadline */
  }
  char *out = filetail_last_lines(s->output, 5);
  rc_error_set(err, "redis-server on 127.0.0.1:%d did not answer PING within %d ms; its output: %s",
               s->port, timeout_ms, out ? out : "");
  free(out);
  sut_destroy(s->process);
  s->process = NULL;
  return -1;
}

redis_server_t *redis_server_start(const char *dir, int timeout_ms, rc_error_t *err) {
  redis_server_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    rc_error_set(err, "out of memory");
    return NULL;
  }
  s->dir = strdup(dir);
  if (asprintf(&s->output, "%s/redis-server.log", dir) < 0) s->output = NULL;
  if (s->dir == NULL || s->output == NULL) {
    rc_error_set(err, "out of memory");
    redis_server_stop(s);
    return NULL;
  }
  /* The port was free a moment ago; another process may take it first, so try a few. */
  for (int attempt = 0; attempt < 3; attempt++) {
    s->port = rc_net_free_port();
    if (s->port > 0 && launch(s, timeout_ms, err) == 0) return s;
  }
  redis_server_stop(s);
  return NULL;
}

int redis_server_port(const redis_server_t *s) { return s->port; }

void redis_server_stop(redis_server_t *s) {
  if (s == NULL) return;
  if (s->process != NULL) {
    sut_stop(s->process, 2000, NULL, NULL);
    sut_destroy(s->process);
  }
  free(s->dir);
  free(s->output);
  free(s);
}

void redis_server_kill(redis_server_t *s) {
  if (s->process == NULL) return;
  sut_stop(s->process, 2000, NULL, NULL);
  sut_destroy(s->process);
  s->process = NULL;
}

int redis_server_relaunch(redis_server_t *s, int timeout_ms, rc_error_t *err) {
  redis_server_kill(s);
  return launch(s, timeout_ms, err);
}

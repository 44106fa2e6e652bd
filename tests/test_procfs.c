/* Unit tests of harness/procfs.c: /proc/net/tcp lines, and snapshots of a real child
 * process group holding real sockets on 127.0.0.1 (a connected one, one the peer closed
 * and left in CLOSE_WAIT, a grandchild's in the same group). Contract: harness/procfs.h. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procfs.h"
#include "rc_clock.h"
#include "test_support.h"

START_TEST(test_parse_lines) {
  procfs_tcp_t s;
  ck_assert(procfs_parse_tcp_line(
      "   3: 0100007F:A1B2 0100007F:1F90 08 00000000:00000000 00:00000000 00000000  1000        "
      "0 123456 1 0000000000000000 20 4 30 10 -1",
      &s));
  ck_assert_uint_eq(s.local_port, 0xA1B2);
  ck_assert_uint_eq(s.remote_port, 8080);
  ck_assert_int_eq(s.state, PROCFS_TCP_CLOSE_WAIT);
  ck_assert_uint_eq(s.inode, 123456);
  ck_assert_str_eq(procfs_tcp_state_name(s.state), "CLOSE_WAIT");
  /* tcp6 addresses are longer; the same fields follow. */
  ck_assert(procfs_parse_tcp_line(
      "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A "
      "00000000:00000000 00:00000000 00000000  1000        0 99 1 0000000000000000 100 0 0 10 0",
      &s));
  ck_assert_int_eq(s.state, PROCFS_TCP_LISTEN);
  ck_assert_uint_eq(s.inode, 99);
  ck_assert(!procfs_parse_tcp_line(
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode",
      &s));
  ck_assert(!procfs_parse_tcp_line("   3: 0100007F:A1B2", &s));
  ck_assert(!procfs_parse_tcp_line("", &s));
  ck_assert_str_eq(procfs_tcp_state_name((procfs_tcp_state_t)42), "UNKNOWN");
}
END_TEST

static int listen_local(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(fd, 8), 0);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  return fd;
}

static int connect_local(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Polls until the group shows `want` CLOSE_WAIT sockets to port (1 s deadline). */
static void snapshot_until(pid_t pgid, uint16_t port, size_t want, procfs_snapshot_t *s) {
  int64_t deadline = rc_clock_mono_ms() + 1000;
  rc_error_t err;
  for (;;) {
    ck_assert_msg(procfs_snapshot_group(pgid, s, &err) == 0, "%s", err.msg);
    if (procfs_count_tcp(s, port, PROCFS_TCP_CLOSE_WAIT) == want ||
        rc_clock_mono_ms() > deadline)
      return;
    procfs_snapshot_free(s);
    usleep(10000);
  }
}

/* A child in its own group connects twice to our listener, and a grandchild once; we
 * close one accepted end, which leaves the child's socket in CLOSE_WAIT. */
START_TEST(test_group_snapshot) {
  uint16_t port;
  int listener = listen_local(&port);
  int ready[2];
  ck_assert_int_eq(pipe(ready), 0);
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    setpgid(0, 0);
    connect_local(port);
    connect_local(port);
    if (fork() == 0) {
      connect_local(port);
      (void)write(ready[1], "g", 1);
      pause();
      _exit(0);
    }
    (void)write(ready[1], "c", 1);
    pause();
    _exit(0);
  }
  setpgid(child, child); /* either side may win the race; both ask the same */
  char c;
  ck_assert_int_eq(read(ready[0], &c, 1), 1);
  ck_assert_int_eq(read(ready[0], &c, 1), 1);
  int accepted[3];
  for (int i = 0; i < 3; i++) accepted[i] = accept(listener, NULL, NULL);
  procfs_snapshot_t s;
  snapshot_until(child, port, 0, &s);
  ck_assert_uint_eq(s.processes, 2);
  ck_assert_uint_eq(procfs_count_tcp(&s, port, PROCFS_TCP_ESTABLISHED), 3);
  ck_assert_uint_eq(procfs_count_tcp(&s, port, PROCFS_TCP_ANY), 3);
  ck_assert_uint_eq(procfs_count_tcp(&s, 1, PROCFS_TCP_ANY), 0);
  ck_assert_uint_ge(s.sockets, 3);
  ck_assert_uint_ge(s.fds, s.sockets + 6); /* stdio of both processes at least */
  size_t fds = s.fds;
  char text[512];
  procfs_describe(&s, text, sizeof text);
  ck_assert_msg(strstr(text, "2 processes") != NULL && strstr(text, "ESTABLISHED") != NULL, "%s",
                text);
  procfs_snapshot_free(&s);
  close(accepted[0]);
  snapshot_until(child, port, 1, &s);
  ck_assert_uint_eq(procfs_count_tcp(&s, port, PROCFS_TCP_CLOSE_WAIT), 1);
  ck_assert_uint_eq(procfs_count_tcp(&s, port, PROCFS_TCP_ESTABLISHED), 2);
  ck_assert_uint_eq(s.fds, fds); /* CLOSE_WAIT still holds its descriptor */
  /* A cut description ends in "...". */
  procfs_describe(&s, text, 60);
  ck_assert_uint_eq(strlen(text), 59);
  ck_assert_str_eq(text + 56, "...");
  /* A reset socket leaves the TCP table while the child's descriptor still holds it:
   * only its inode shows that. */
  struct sockaddr_in peer;
  socklen_t peer_len = sizeof peer;
  ck_assert_int_eq(getpeername(accepted[1], (struct sockaddr *)&peer, &peer_len), 0);
  const procfs_tcp_t *before = procfs_find_local(&s, ntohs(peer.sin_port));
  ck_assert_ptr_nonnull(before);
  unsigned long inode = before->inode;
  ck_assert(procfs_holds_socket(&s, inode));
  ck_assert(!procfs_holds_socket(&s, 1));
  procfs_snapshot_free(&s);
  struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
  ck_assert_int_eq(setsockopt(accepted[1], SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close),
                   0);
  close(accepted[1]);
  int64_t reset_deadline = rc_clock_mono_ms() + 1000;
  rc_error_t snap_err;
  for (;;) {
    ck_assert_msg(procfs_snapshot_group(child, &s, &snap_err) == 0, "%s", snap_err.msg);
    if (procfs_find_local(&s, ntohs(peer.sin_port)) == NULL || rc_clock_mono_ms() > reset_deadline)
      break;
    procfs_snapshot_free(&s);
    usleep(10000);
  }
  ck_assert_ptr_null(procfs_find_local(&s, ntohs(peer.sin_port)));
  ck_assert(procfs_holds_socket(&s, inode));
  ck_assert_uint_eq(s.fds, fds);
  procfs_snapshot_free(&s);
  kill(-child, SIGKILL);
  waitpid(child, NULL, 0);
  close(accepted[2]);
  close(listener);
  /* The group is gone (the grandchild may need a moment to be reaped by init). */
  rc_error_t err;
  int64_t deadline = rc_clock_mono_ms() + 2000;
  int rc;
  while ((rc = procfs_snapshot_group(child, &s, &err)) == 0 && rc_clock_mono_ms() < deadline) {
    procfs_snapshot_free(&s);
    usleep(10000);
  }
  ck_assert_int_eq(rc, -1);
  ck_assert_msg(strstr(err.msg, "no process in process group") != NULL, "%s", err.msg);
  procfs_snapshot_free(&s);
}
END_TEST

static Suite *procfs_suite(void) {
  Suite *s = suite_create("procfs");
  TCase *tc = tcase_create("procfs");
  tcase_add_test(tc, test_parse_lines);
  tcase_add_test(tc, test_group_snapshot);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(procfs_suite());
}

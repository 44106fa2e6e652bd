/* Unit tests of common/rc_net.c's port picking: a port handed out is bindable on
 * 127.0.0.1, and processes forked from a parent that already picked one walk sequences
 * of their own. The second is what made two parallel tests of one run (children of the
 * runner, which had picked the PostgreSQL cluster's port) hand their SUTs the same
 * --http-port, so that one SUT failed with "Address already in use". */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rc_net.h"
#include "test_support.h"

#define PICKS 3

/* Forks a child that picks PICKS ports and writes them to a pipe; reads them back. */
static void picks_of_child(int ports[PICKS]) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    int mine[PICKS];
    for (int i = 0; i < PICKS; i++) mine[i] = rc_net_free_port();
    _exit(write(fds[1], mine, sizeof mine) == (ssize_t)sizeof mine ? 0 : 1);
  }
  close(fds[1]);
  ck_assert_int_eq(read(fds[0], ports, sizeof(int) * PICKS), (ssize_t)(sizeof(int) * PICKS));
  close(fds[0]);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

START_TEST(test_port_is_bindable) {
  int port = rc_net_free_port();
  ck_assert_int_gt(port, 0);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                          .sin_port = htons((uint16_t)port)};
  ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof a) == 0, "port %d is not bindable", port);
  close(fd);
}
END_TEST

/* Two children of a parent that has picked a port already do not hand out the same
 * ports (before the fix they continued the parent's sequence in lockstep; now each
 * seeds from its own pid: equal starts have a chance of about 1 in 12000). */
START_TEST(test_forked_children_pick_apart) {
  ck_assert_int_gt(rc_net_free_port(), 0); /* the parent's sequence is seeded */
  int a[PICKS], b[PICKS];
  picks_of_child(a);
  picks_of_child(b);
  int same = 0;
  for (int i = 0; i < PICKS; i++) same += a[i] == b[i];
  ck_assert_msg(same < PICKS, "both children picked %d, %d, %d", a[0], a[1], a[2]);
}
END_TEST

static Suite *rc_net_suite(void) {
  Suite *s = suite_create("rc_net");
  TCase *tc = tcase_create("ports");
  tcase_add_test(tc, test_port_is_bindable);
  tcase_add_test(tc, test_forked_children_pick_apart);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(rc_net_suite());
}

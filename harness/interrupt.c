#include "interrupt.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received;
static struct sigaction saved_int, saved_term;
static bool installed;

static void on_signal(int sig) {
  if (received == 0) received = sig;
}

int interrupt_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  received = 0;
  if (sigaction(SIGINT, &sa, &saved_int) != 0) return -1;
  if (sigaction(SIGTERM, &sa, &saved_term) != 0) {
    sigaction(SIGINT, &saved_int, NULL);
    return -1;
  }
  installed = true;
  return 0;
}

void interrupt_restore(void) {
  if (!installed) return;
  sigaction(SIGINT, &saved_int, NULL);
  sigaction(SIGTERM, &saved_term, NULL);
  installed = false;
}

bool interrupt_requested(void) {
  return received != 0;
}

int interrupt_signal(void) {
  return (int)received;
}

void interrupt_note(int sig) {
  if (received == 0) received = sig;
}

/* interrupt: notices SIGINT and SIGTERM sent to replcheck, so a run can stop its tests,
 * still write its reports and exit 130 instead of dying half-way.
 *
 * interrupt_install() replaces the two signals' dispositions with a handler that only
 * records the signal (SA_RESTART, so nothing in progress sees EINTR);
 * interrupt_restore() puts the previous ones back. The dispatcher may block the
 * signals and collect them with sigtimedwait(), reporting them with
 * interrupt_note(). Process-wide state: call from the main thread only. */
#ifndef INTERRUPT_H
#define INTERRUPT_H

#include <stdbool.h>

/* Installs the handlers and clears any earlier record. Returns 0 or -1. */
int interrupt_install(void);
/* Restores the dispositions saved by interrupt_install(). */
void interrupt_restore(void);
/* True once SIGINT or SIGTERM was received since interrupt_install(). */
bool interrupt_requested(void);
/* The signal received first (SIGINT or SIGTERM), or 0. */
int interrupt_signal(void);
/* Records a signal collected some other way (sigtimedwait). */
void interrupt_note(int sig);

/* The exit status of an interrupted run (128 + SIGINT, as shells report it). */
#define INTERRUPT_EXIT_STATUS 130

#endif

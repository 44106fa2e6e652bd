#include "progress.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

int progress_mode_from_name(const char *name, progress_mode_t *out) {
  static const struct {
    const char *name;
    progress_mode_t mode;
  } modes[] = {{"auto", PROGRESS_AUTO}, {"plain", PROGRESS_PLAIN}, {"none", PROGRESS_NONE}};
  for (size_t i = 0; name != NULL && i < sizeof modes / sizeof modes[0]; i++) {
    if (strcmp(name, modes[i].name) == 0) {
      *out = modes[i].mode;
      return 0;
    }
  }
  return -1;
}

void progress_init(progress_t *p, FILE *out, progress_mode_t mode, size_t total, unsigned jobs) {
  *p = (progress_t){.out = out, .total = total, .jobs = jobs ? jobs : 1};
  p->lines = mode != PROGRESS_NONE;
  p->eta = mode == PROGRESS_AUTO && isatty(fileno(out));
}

void progress_format_seconds(double seconds, char *buf, size_t cap) {
  if (!(seconds >= 0)) seconds = 0; /* NaN too */
  if (seconds > 1e9) seconds = 1e9;
  long tenths = (long)(seconds * 10.0 + 0.5);
  snprintf(buf, cap, "%ld.%lds", tenths / 10, tenths % 10);
}

void progress_format_eta(double mean_seconds, size_t remaining, unsigned jobs, char *buf,
                         size_t cap) {
  if (!(mean_seconds >= 0)) mean_seconds = 0;
  if (jobs == 0) jobs = 1;
  /* Tests left are started in rounds of `jobs`. */
  double rounds = ceil((double)remaining / (double)jobs);
  double left = ceil(mean_seconds * rounds);
  if (left > 359999) left = 359999;
  long s = (long)left;
  if (s < 60)
    snprintf(buf, cap, "ETA %lds", s);
  else if (s < 3600)
    snprintf(buf, cap, "ETA %ldm%02lds", s / 60, s % 60);
  else
    snprintf(buf, cap, "ETA %ldh%02ldm", s / 3600, (s % 3600) / 60);
}

/* Prints text under a label, continuation lines indented to match. */
static void print_indented(FILE *out, const char *label, const char *text) {
  if (text == NULL || text[0] == '\0') return;
  fprintf(out, "      %s", label);
  for (const char *p = text; *p; p++) {
    fputc(*p, out);
    if (*p == '\n' && p[1] != '\0') fputs("        ", out);
  }
  if (text[strlen(text) - 1] != '\n') fputc('\n', out);
}

static void print_details(FILE *out, const report_case_t *c) {
  switch (c->verdict) {
    case VERDICT_PASS:
      if (c->message != NULL) print_indented(out, "note: ", c->message);
      return;
    case VERDICT_SKIP:
      print_indented(out, "reason: ", c->message);
      return;
    case VERDICT_XFAIL:
    case VERDICT_XPASS:
      print_indented(out, "", c->message);
      return;
    default:
      break;
  }
  fprintf(out, "      Requirement (%s): %s\n", c->requirements ? c->requirements : "",
          c->requirement ? c->requirement : "");
  if (c->expected != NULL) print_indented(out, "Expected: ", c->expected);
  if (c->actual != NULL) print_indented(out, "Actual: ", c->actual);
  if (c->expected == NULL) print_indented(out, "Error: ", c->message);
  print_indented(out, "", c->evidence);
}

void progress_case(progress_t *p, const report_case_t *c, int retries) {
  p->done++;
  if (c->verdict != VERDICT_SKIP) {
    p->run_seconds += c->seconds > 0 ? c->seconds : 0;
    p->runs++;
  }
  if (!p->lines) return;
  char secs[32], retried[48] = "", eta[48] = "";
  progress_format_seconds(c->seconds, secs, sizeof secs);
  if (retries > 0) snprintf(retried, sizeof retried, " RETRIED %d times", retries);
  if (p->eta && p->runs > 0 && p->done < p->total) {
    char text[40];
    progress_format_eta(p->run_seconds / (double)p->runs, p->total - p->done, p->jobs, text,
                        sizeof text);
    snprintf(eta, sizeof eta, "  %s", text);
  }
  fprintf(p->out, "[%zu/%zu] %s %s (%s)%s%s\n", p->done, p->total, verdict_name(c->verdict),
          c->id ? c->id : "", secs, retried, eta);
  print_details(p->out, c);
  fflush(p->out);
}

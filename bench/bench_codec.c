/* Codec throughput: lines per second through proto_frame_next + proto_parse_line (modern
 * dialect, main-to-worker lines, rows validated as JSON) over a buffer of realistic
 * lines, against a memchr-only scan of the same buffer that just finds the LFs.
 *   bench_codec [MEGABYTES=64] [PASSES=5]      best pass of each is reported */
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "proto.h"

static size_t scan_memchr(const char *buf, size_t len) {
  size_t lines = 0;
  const char *p = buf, *end = buf + len;
  while (p < end) {
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (lf == NULL) break;
    lines++;
    p = lf + 1;
  }
  return lines;
}

static size_t scan_codec(const char *buf, size_t len) {
  size_t lines = 0, at = 0, line_len, consumed;
  proto_command_t cmd;
  while (proto_frame_next(buf + at, len - at, &line_len, &consumed) == PROTO_FRAME_LINE) {
    if (proto_parse_line(PROTO_DIALECT_MODERN, PROTO_SENDER_SERVER, buf + at, line_len, &cmd,
                         NULL) != PROTO_OK) {
      fprintf(stderr, "bench_codec: line refused: %.*s\n", (int)line_len, buf + at);
      exit(1);
    }
    lines++;
    at += consumed;
  }
  return lines;
}

int main(int argc, char **argv) {
  size_t megabytes = argc > 1 ? (size_t)atol(argv[1]) : 64;
  int passes = argc > 2 ? atoi(argv[2]) : 5;
  size_t cap = megabytes * 1024 * 1024;
  char *buf = malloc(cap + 1024);
  if (buf == NULL) return 1;
  size_t len = 0, total_lines = 0;
  for (uint64_t i = 0; len + 600 < cap; i++) {
    int n = bench_main_line(buf + len, 600, i);
    len += (size_t)n;
    buf[len++] = '\n';
    total_lines++;
  }
  double best_codec = 1e9, best_memchr = 1e9;
  volatile size_t sink = 0;
  for (int p = 0; p < passes; p++) {
    double t0 = bench_now();
    sink += scan_memchr(buf, len);
    double t1 = bench_now();
    sink += scan_codec(buf, len);
    double t2 = bench_now();
    if (t1 - t0 < best_memchr) best_memchr = t1 - t0;
    if (t2 - t1 < best_codec) best_codec = t2 - t1;
  }
  printf("bench_codec: %zu lines, %.1f MB, average line %.0f bytes, best of %d passes\n",
         total_lines, (double)len / 1e6, (double)len / (double)total_lines, passes);
  bench_result("codec (frame+parse) lines/s", (double)total_lines / best_codec, "lines/s",
               "memchr-only lines/s", (double)total_lines / best_memchr, 1.0 / 3.0);
  printf("codec %.1f MB/s, memchr %.1f MB/s\n", (double)len / best_codec / 1e6,
         (double)len / best_memchr / 1e6);
  free(buf);
  return sink == 0;
}

// The state of the art on this benchmark's rows: how fast simdjson (Debian's
// libsimdjson-dev, runtime-dispatched SIMD kernels) validates the RDATA rows of
// bench_codec's buffer, against the same memchr-only scan. Two forms:
//   - per line, as the codec works: memchr finds the LF, simdjson's DOM parser fully
//     parses the line's row (no command parsing at all);
//   - batched, simdjson's best case: parse_many over the rows alone, one per line,
//     extracted beforehand (no framing, no command parsing).
// If validation alone, done this way, reaches less than a third of memchr, no codec
// that validates every row can meet bench_codec's target. Built only when pkg-config
// finds simdjson (REPLCHECK_BENCH=ON); not part of CI.
//   floor_simdjson [MEGABYTES=32] [PASSES=7]
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {
#include "bench_common.h"
}

static size_t scan_memchr(const char *buf, size_t len) {
  size_t lines = 0;
  const char *p = buf, *end = buf + len;
  while (p < end) {
    const char *lf = static_cast<const char *>(memchr(p, '\n', static_cast<size_t>(end - p)));
    if (lf == nullptr) break;
    lines++;
    p = lf + 1;
  }
  return lines;
}

// The row of a modern RDATA line (after its fourth space), or nullptr.
static const char *row_of(const char *p, const char *lf) {
  if (lf - p < 6 || memcmp(p, "RDATA ", 6) != 0) return nullptr;
  int spaces = 0;
  for (const char *q = p; q < lf; q++)
    if (*q == ' ' && ++spaces == 4) return q + 1;
  return nullptr;
}

int main(int argc, char **argv) {
  size_t megabytes = argc > 1 ? static_cast<size_t>(atol(argv[1])) : 32;
  int passes = argc > 2 ? atoi(argv[2]) : 7;
  size_t cap = megabytes * 1024 * 1024;
  // simdjson reads up to SIMDJSON_PADDING bytes past a document: room after the last.
  char *buf = static_cast<char *>(malloc(cap + 1024 + simdjson::SIMDJSON_PADDING));
  if (buf == nullptr) return 1;
  size_t len = 0, total = 0;
  for (uint64_t i = 0; len + 600 < cap; i++) {
    len += static_cast<size_t>(bench_main_line(buf + len, 600, i));
    buf[len++] = '\n';
    total++;
  }
  memset(buf + len, ' ', 1024 + simdjson::SIMDJSON_PADDING);
  std::string rows;
  for (const char *p = buf, *end = buf + len; p < end;) {
    const char *lf = static_cast<const char *>(memchr(p, '\n', static_cast<size_t>(end - p)));
    const char *r = row_of(p, lf);
    if (r != nullptr) {
      rows.append(r, static_cast<size_t>(lf - r));
      rows.push_back('\n');
    }
    p = lf + 1;
  }
  simdjson::padded_string padded_rows(rows);
  simdjson::dom::parser parser;
  double best_memchr = 1e9, best_each = 1e9, best_batch = 1e9;
  size_t invalid = 0;
  volatile size_t sink = 0;
  for (int pass = 0; pass < passes; pass++) {
    double t0 = bench_now();
    sink += scan_memchr(buf, len);
    double t1 = bench_now();
    for (const char *p = buf, *end = buf + len; p < end;) {
      const char *lf = static_cast<const char *>(memchr(p, '\n', static_cast<size_t>(end - p)));
      if (lf == nullptr) break;
      const char *r = row_of(p, lf);
      if (r != nullptr && parser.parse(r, static_cast<size_t>(lf - r), false).error()) invalid++;
      p = lf + 1;
    }
    double t2 = bench_now();
    simdjson::dom::document_stream docs;
    if (parser.parse_many(padded_rows).get(docs)) return 1;
    for (auto doc : docs)
      if (doc.error()) invalid++;
    double t3 = bench_now();
    if (t1 - t0 < best_memchr) best_memchr = t1 - t0;
    if (t2 - t1 < best_each) best_each = t2 - t1;
    if (t3 - t2 < best_batch) best_batch = t3 - t2;
  }
  printf("floor_simdjson: %zu lines, %.1f MB (rows %.1f MB), best of %d passes, %zu invalid, "
         "simdjson kernel %s\n",
         total, static_cast<double>(len) / 1e6, static_cast<double>(rows.size()) / 1e6, passes,
         invalid, simdjson::get_active_implementation()->name().c_str());
  double t = static_cast<double>(total);
  printf("memchr-only lines/s                 %14.0f lines/s\n", t / best_memchr);
  printf("memchr + simdjson DOM of each row   %14.0f lines/s  ratio %.3f\n", t / best_each,
         best_memchr / best_each);
  printf("simdjson parse_many, rows alone     %14.0f lines/s  ratio %.3f (%.2f GB/s of rows)\n",
         t / best_batch, best_memchr / best_batch,
         static_cast<double>(rows.size()) / best_batch / 1e9);
  return invalid != 0 || sink == 0;
}

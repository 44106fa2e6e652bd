/* junit: writes a report_t as JUnit XML that Jenkins, GitLab and GitHub test
 * reporters accept. The output validates against both schemas in shared/junit/
 * (Apache Ant's strict schema and the Jenkins one).
 *
 * Mapping: one <testsuite> (id 0, package = name) inside an attribute-less
 * <testsuites>; each case is a <testcase> with name = test id, classname =
 * "replcheck.<area>", time in seconds with '.' as decimal separator whatever the
 * locale (integer millisecond arithmetic, never %f). Per verdict:
 *   PASS        plain <testcase/>
 *   FAIL        <failure type="FAIL" message=...> whose text is the failure block
 *               (Requirement (ids): sentence / Source / Location / Expected / Actual /
 *               Evidence:, each line only when the case holds it)
 *   ERROR       <error type="ERROR" message=...> with the same block
 *   SKIP        <skipped> with the reason as text (Jenkins' schema allows no attribute)
 *   NON_STRICT  plain <testcase/>; the suite's system-out says which SHOULD was missed
 *   XFAIL       <skipped> whose text starts "XFAIL (expected failure ...)" followed by
 *               the failure block. Chosen over a plain pass (as pytest does) because
 *               every CI reporter shows skipped tests with their text but none turns red
 *               for them, so the known failure stays visible without failing the build.
 *   XPASS       plain <testcase/> plus a WARNING note in the suite's system-out
 * With report->strict set, NON_STRICT and XPASS become <failure type="NON_STRICT"|
 * "XPASS">. An out-of-range verdict is written as an <error>. The testsuite's counts
 * come from the same mapping (skipped = SKIP + XFAIL).
 *
 * The Ant schema gives <testcase> no system-out and no extra attributes, so the
 * suite-level <system-out> carries one line per case (verdict, id, requirement ids,
 * time, message), the NON_STRICT / XPASS notes and each case's output excerpt; the
 * <properties> carry replcheck.version, the report's own properties,
 * replcheck.strict and replcheck.verdict.<NAME> counts (at least one property is
 * always present, as Jenkins' schema requires).
 *
 * Text is escaped for XML 1.0: & < > " ' become entities, CR becomes &#13; (and TAB/LF
 * become references inside attributes) so they survive parsing; C0 controls and DEL
 * become the visible text "\xNN" (e.g. an ANSI escape shows as "\x1b[31m"), C1
 * controls "\u00NN"; ill-formed UTF-8 (overlong, surrogate, truncated, stray
 * continuation bytes: one per maximal subpart), U+FFFE and U+FFFF become U+FFFD. The
 * writer never emits CDATA and always escapes '>', so "]]>" is harmless. A blank
 * suite name, hostname or case id gets a fallback ("replcheck", "localhost",
 * "unnamed-<n>"), and a timestamp not of the form YYYY-MM-DDTHH:MM:SS is replaced by
 * the current UTC time, so the schemas' non-empty and date rules always hold.
 *
 * Files are written to "<path>.tmp.<pid>", flushed, fsync'ed and renamed into place,
 * so a reader never sees a truncated report; on failure the temporary file is
 * removed and an existing file at path is left untouched. */
#ifndef JUNIT_H
#define JUNIT_H

#include <stdio.h>

#include "rc_error.h"
#include "report.h"

/* Writes the XML document to an open stream and flushes it. Returns 0, or -1 on a
 * write error (errno says which). */
int junit_write_stream(const report_t *report, FILE *out);

/* Writes atomically to path (creating parent directories is the caller's job).
 * Returns 0, or -1 with err naming the path and the system error. */
int junit_write_file(const report_t *report, const char *path, rc_error_t *err);

#endif

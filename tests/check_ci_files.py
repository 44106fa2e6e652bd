#!/usr/bin/python3
"""Checks the example CI integration files under ci/ with real parsers: the GitHub Actions
and GitLab CI files must be valid YAML with the structure those systems need, each must
install, build, run replcheck with a JUnit report and publish that same report; the
Jenkinsfile must be balanced and do the same in its declarative pipeline.
Usage: check_ci_files.py SOURCE_DIR   (Debian's /usr/bin/python3 with python3-yaml)."""
import re
import sys

import yaml

src = sys.argv[1]
errors = []


def junit_path(command):
    match = re.search(r"replcheck run .*--junit (\S+)", command)
    return match.group(1) if match else None


# GitHub Actions
with open(f"{src}/ci/github-actions.yml") as f:
    gha = yaml.safe_load(f)
steps = gha["jobs"]["conformance"]["steps"]
runs = "\n".join(step.get("run", "") for step in steps).replace("\\\n", " ")
gha_junit = junit_path(runs)
if "install-deps.sh" not in runs or "cmake --build" not in runs:
    errors.append("github-actions.yml: no install/build step")
if gha_junit is None:
    errors.append("github-actions.yml: no `replcheck run ... --junit PATH` step")
published = [s for s in steps if "junit" in s.get("uses", "")]
if not published or published[0]["with"]["report_paths"] != gha_junit:
    errors.append("github-actions.yml: the JUnit report is not published")
if not published or published[0].get("if") != "always()":
    errors.append("github-actions.yml: the report must be published when tests fail too")

# GitLab CI
with open(f"{src}/ci/gitlab-ci.yml") as f:
    gl = yaml.safe_load(f)
job = gl["replcheck"]
script = "\n".join(job["script"])
gl_junit = junit_path(script)
if "install-deps.sh" not in script or gl_junit is None:
    errors.append("gitlab-ci.yml: no install step or no replcheck run with --junit")
if job["artifacts"]["reports"]["junit"] != gl_junit or job["artifacts"].get("when") != "always":
    errors.append("gitlab-ci.yml: artifacts.reports.junit must be the run's report, when: always")

# Jenkinsfile: balanced braces/parens/quotes, a junit step in post.always on the report.
with open(f"{src}/ci/Jenkinsfile") as f:
    jenkins = f.read()
code = re.sub(r"//.*", "", jenkins)
code = re.sub(r"'[^'\n]*'", "''", code)
depth = 0
for ch in code:
    depth += {"{": 1, "}": -1}.get(ch, 0)
    if depth < 0:
        break
if depth != 0:
    errors.append("Jenkinsfile: unbalanced braces")
sh_runs = "\n".join(re.findall(r"sh '([^']*)'", jenkins))
jk_junit = junit_path(sh_runs)
published = re.search(r"post\s*\{\s*always\s*\{[^}]*junit testResults: '([^']+)'", jenkins)
if jk_junit is None or published is None or published.group(1) != jk_junit:
    errors.append("Jenkinsfile: post.always must publish the run's --junit report")

for e in errors:
    print("FAIL:", e)
print("CI integration files: %d problem(s)" % len(errors))
sys.exit(1 if errors else 0)

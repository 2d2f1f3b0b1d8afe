#!/usr/bin/env bash
# Loom's whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. setup if needed,
#   2. the CPU build and every test (`bazel test //...`),
#   3. the CUDA build (`bazel build --config=cuda //...`): compiled and linked, never run here.
# Ends with "N passed, M failed" counted over the individual test cases of every test binary.
set -uo pipefail
cd "$(dirname "$0")/.."

launch/setup.sh || { echo "test: setup failed" >&2; exit 1; }

start=$(date +%s)
# Count only this run's test cases: drop reports left by earlier invocations (e.g. the
# run_N_of_M directories of a --runs_per_test run), which would otherwise be counted again.
find -L bazel-testlogs -name test.xml -delete 2>/dev/null || true
# Tests always run (never served from the disk cache): they also check things Bazel does not
# track, such as the installed LibTorch.
bazel test --nocache_test_results //... ; test_rc=$?
cpu_done=$(date +%s)

cuda_rc=0
if [[ "${LOOM_SKIP_CUDA_BUILD:-0}" == "1" ]]; then
  echo "test: LOOM_SKIP_CUDA_BUILD=1: not building the CUDA configuration" >&2
else
  bazel build --config=cuda //... ; cuda_rc=$?
fi
end=$(date +%s)

# Count test cases from the JUnit XML every test writes (gtest and the shell tests).
read -r passed failed < <(python3 - <<'PY'
import glob, xml.etree.ElementTree as ET
passed = failed = 0
for path in glob.glob("bazel-testlogs/**/test.xml", recursive=True):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        failed += 1
        continue
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        for case in s.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            else:
                passed += 1
print(passed, failed)
PY
)
echo "test: CPU build+tests $((cpu_done - start)) s (bazel exit $test_rc), CUDA build $((end - cpu_done)) s (bazel exit $cuda_rc)"
if [[ $test_rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi
if [[ $cuda_rc -ne 0 ]]; then echo "test: the CUDA configuration failed to build" >&2; failed=$((failed + 1)); fi
echo "${passed} passed, ${failed} failed"
[[ $test_rc -eq 0 && $cuda_rc -eq 0 ]]

#!/usr/bin/env bash
# chronicle — style and static checks: clang-format (must be clean) and clang-tidy.
#   scripts/lint.sh          check formatting, run clang-tidy on lib/ and tools/
#   scripts/lint.sh --fix    reformat in place
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
files=$(git ls-files 'lib/*.h' 'lib/*.cc' 'tools/*.h' 'tools/*.cc' 'tests/*.cc' 'tests/*.h' 'bench/*.cc' 'bench/*.h')
if [[ "${1:-}" == "--fix" ]]; then
    clang-format -i $files
    exit 0
fi
clang-format --dry-run --Werror $files
cmake -S . -B build -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
clang-tidy -p build --quiet $(git ls-files 'lib/src/*.cc' 'tools/*.cc') 2>/dev/null

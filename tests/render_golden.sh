#!/bin/sh
# render_golden.sh TEST GOLDEN - run test_render_golden on a fresh
# bench/newsletter.py folder (VOLLEY_SOURCE_DIR is the source tree)
d=$(mktemp -d) || exit 1
python3 "$VOLLEY_SOURCE_DIR/bench/newsletter.py" "$d" && "$1" "$2" "$d"
rc=$?
rm -rf "$d"
exit $rc

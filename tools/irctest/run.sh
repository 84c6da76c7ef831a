#!/bin/sh
# Runs the irctest IRC server conformance suite (github.com/progval/irctest)
# against chat-server and chat-server-std, a fresh server per test, with the
# markers irctest's own Makefile uses for ngIRCd (IRCv3 is out of scope).
# Needs git, python3 (with venv) and the network once; not part of CI.
#
#   tools/irctest/run.sh            # both servers
#   tools/irctest/run.sh -k WHOWAS  # extra pytest arguments
set -eu
IRCTEST_COMMIT=b00c039766f5c497920dd787f7cb0e0005bd5ce0
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${IRCTEST_DIR:-$ROOT/target/irctest}
if [ ! -d "$WORK/.git" ]; then
    git clone -q https://github.com/progval/irctest "$WORK"
fi
git -C "$WORK" fetch -q origin "$IRCTEST_COMMIT" 2>/dev/null || true
git -C "$WORK" checkout -q "$IRCTEST_COMMIT"
if [ ! -x "$WORK/.venv/bin/python" ]; then
    python3 -m venv "$WORK/.venv"
    "$WORK/.venv/bin/pip" install -q 'pytest!=9.0.0' ecdsa filelock
fi
cp "$ROOT/tools/irctest/sansio_chat.py" "$WORK/irctest/controllers/sansio_chat.py"
(cd "$ROOT" && cargo build -q --release --bin chat-server --bin chat-server-std)
status=0
for server in chat-server chat-server-std; do
    echo "== irctest against $server"
    (cd "$WORK" && SANSIO_CHAT_SERVER="$ROOT/target/release/$server" \
        .venv/bin/python -m pytest -q -rf -p no:cacheprovider \
        --controller irctest.controllers.sansio_chat \
        -m 'not services and not implementation-specific and not deprecated and not strict and not IRCv3' \
        "$@") || status=1
done
exit $status

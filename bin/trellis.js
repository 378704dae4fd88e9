#!/bin/sh
//usr/bin/env true; case "$1" in proxy) export NODE_OPTIONS="${TRELLIS_PROXY_NODE_FLAGS---max-semi-space-size=2} $NODE_OPTIONS";; esac; exec node "$0" "$@"
// Entry point installed as `trellis`: runs the compiled CLI. The line above runs when this file is executed as
// a program: for `trellis proxy` it puts small-heap V8 flags first in NODE_OPTIONS (V8 sizes its heap only at
// startup; the user's own NODE_OPTIONS come after and win; TRELLIS_PROXY_NODE_FLAGS replaces them, empty for
// none), then execs node on this same file, in the same process. Node reads that line as a comment; started
// as `node bin/trellis.js`, node's flags are whatever that command line gives (docs/operations.md).
import '../dist/cli/main.js';

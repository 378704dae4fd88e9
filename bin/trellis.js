#!/usr/bin/env node
// Entry point installed as `trellis`: runs the compiled CLI.
import '../dist/cli/main.js';

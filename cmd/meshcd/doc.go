// Command meshcd is the meshcd command line: it wires the spec loader, the
// renderer, the rule catalogue and the reconciler together. It holds no
// logic of its own beyond parsing flags, choosing output formats and mapping
// outcomes to exit codes.
package main

// Package examples holds runnable spec repositories, one folder each, and
// the test that renders and validates every one of them against its golden
// output. It has no code of its own.
package examples

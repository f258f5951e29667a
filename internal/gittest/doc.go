// Package gittest serves git repositories on disk over git's smart HTTP
// protocol behind basic auth, for tests that fetch with credentials.
package gittest

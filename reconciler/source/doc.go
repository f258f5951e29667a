// Package source fetches a spec repository with go-git: it lists the
// remote's refs first and clones only when the pinned branch, tag or commit
// moved, checks out the revision, and names it "branch@sha1:<hash>".
//
// Credentials (an https user and password or token, an ssh key with
// known_hosts) never appear in its errors: URLs lose their user info and
// every secret is masked.
//
// It never renders or applies anything.
package source

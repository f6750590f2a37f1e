// Package buildinfo names the running binary: the version stamped at
// build (-ldflags "-X github.com/eddy-broker/eddy/internal/buildinfo.version=v1.2.3"),
// else the module's version, and the VCS commit Go recorded (go build in
// a git checkout), for eddy version, the serve log and eddy_build_info.
package buildinfo

import "runtime/debug"

// version is set with -ldflags -X; empty: read from the build.
var version string

// Version is the binary's version: the stamped one, the module's, or
// "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Commit is the VCS revision (12 characters, "+dirty" for local
// changes), or "unknown" when the build recorded none.
func Commit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

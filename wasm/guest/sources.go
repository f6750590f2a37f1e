//go:build !wasip1

package guest

import "embed"

// Sources is this SDK's source, which "eddy transform init" copies into a
// new transform so it builds with no module download.
//
//go:embed guest.go export_wasip1.go native.go run.go
var Sources embed.FS

//go:build !unix

package eta

import "time"

// mmCPUTime is not available on this platform.
func mmCPUTime() (time.Duration, bool) { return 0, false }

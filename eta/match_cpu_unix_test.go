//go:build unix

package eta

import (
	"syscall"
	"time"
)

// mmCPUTime returns the user plus system CPU time used by the process so
// far, so that throughput can be measured per CPU second on a machine
// shared with other work; ok is false where it is not available.
func mmCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

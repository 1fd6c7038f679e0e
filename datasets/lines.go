package datasets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// maxLineBytes bounds the length of one input line; longer lines are an
// error rather than an unbounded allocation.
const maxLineBytes = 4 << 20

// maxCoord bounds the absolute value of coordinates so that distances stay
// finite and fit in an int (TSPLIB nint) without overflow.
const maxCoord = 1e9

// lineReader yields the lines of a text file with their 1-based numbers,
// without the line terminator; CRLF and LF are both accepted.
type lineReader struct {
	sc   *bufio.Scanner
	line int
	text string
}

func newLineReader(r io.Reader) *lineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	return &lineReader{sc: sc}
}

// next advances to the next line and reports whether there is one.
func (lr *lineReader) next() bool {
	if !lr.sc.Scan() {
		return false
	}
	lr.line++
	lr.text = strings.TrimSuffix(lr.sc.Text(), "\r")
	return true
}

// err returns the read error, if any, with the line it happened on.
func (lr *lineReader) err() error {
	err := lr.sc.Err()
	if err == nil {
		return nil
	}
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("line %d: line longer than %d bytes", lr.line+1, maxLineBytes)
	}
	return fmt.Errorf("line %d: %w", lr.line+1, err)
}

// errorf formats an error prefixed with the current line number.
func (lr *lineReader) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: "+format, append([]any{lr.line}, args...)...)
}

// parseFloat parses a finite float64 whose absolute value is at most limit.
func parseFloat(s string, limit float64) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > limit {
		return 0, false
	}
	return v, true
}

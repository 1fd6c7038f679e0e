// Package problem holds the error the product packages (dispatch,
// analytics, notify) return for a request the caller can act on; the HTTP
// layer answers it with the status of its code.
package problem

import "fmt"

// Error is a failure the caller can act on, with a code the HTTP layer
// maps to a status: InvalidQuery and InvalidValue (400), Unauthorized
// (401), Forbidden (403), NotFound (404), Conflict (409).
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with code and the formatted message.
func Errorf(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

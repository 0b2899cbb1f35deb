// Package forge is the domain of kod: repositories, tokens and permissions,
// collaborators, protected branches, run records, and the one authorisation
// function every transport calls. It knows nothing of HTTP, SSH or Docker.
package forge

import (
	"errors"
	"fmt"
)

// Sentinel kinds. Every error the domain returns wraps one of them (with %w)
// so transports can map it to a status without matching text.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrForbidden    = errors.New("forbidden")
	ErrInvalid      = errors.New("invalid")
	ErrUnauthorized = errors.New("unauthorized")
)

// Error is a domain error whose Msg is meant for users (it becomes the
// `{"error": Msg}` body of the Kod API). Kind is one of the sentinels above.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

// NotFound returns an ErrNotFound with a user-facing message.
func NotFound(format string, args ...any) error { return userErr(ErrNotFound, format, args) }

// Conflict returns an ErrConflict with a user-facing message.
func Conflict(format string, args ...any) error { return userErr(ErrConflict, format, args) }

// Forbidden returns an ErrForbidden with a user-facing message.
func Forbidden(format string, args ...any) error { return userErr(ErrForbidden, format, args) }

// Invalid returns an ErrInvalid with a user-facing message.
func Invalid(format string, args ...any) error { return userErr(ErrInvalid, format, args) }

func userErr(kind error, format string, args []any) error {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &Error{Kind: kind, Msg: msg}
}

// UserMessage returns the user-facing message of err and true when err (or
// an error it wraps) is an *Error.
func UserMessage(err error) (string, bool) {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Msg, true
	}
	return "", false
}

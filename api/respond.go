package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"syscall"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/repos"
)

// maxJSONBody caps request bodies of the JSON API, bytes.
const maxJSONBody = 1 << 20

// errorBody is Kod's error shape: {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// statusOf maps a domain error to an HTTP status and the message users see.
// Errors without a user message are internal: 500 "Internal server error".
func statusOf(err error) (int, string, bool) {
	var bad *gitsvc.BadRequestError
	if errors.As(err, &bad) {
		return http.StatusBadRequest, bad.Msg, true
	}
	var imp *repos.ImportError
	if errors.As(err, &imp) { // Kod: 500 "Failed to import repository: <git stderr>"
		return http.StatusInternalServerError, imp.Error(), true
	}
	if status, msg, ok := storageStatus(err); ok {
		return status, msg, false // logged: the operator must act
	}
	msg, ok := forge.UserMessage(err)
	if !ok {
		return http.StatusInternalServerError, "Internal server error", false
	}
	switch {
	case errors.Is(err, forge.ErrNotFound):
		return http.StatusNotFound, msg, true
	case errors.Is(err, forge.ErrConflict):
		return http.StatusConflict, msg, true
	case errors.Is(err, forge.ErrForbidden):
		return http.StatusForbidden, msg, true
	case errors.Is(err, forge.ErrInvalid):
		return http.StatusBadRequest, msg, true
	case errors.Is(err, forge.ErrUnauthorized):
		return http.StatusUnauthorized, msg, true
	}
	return http.StatusInternalServerError, "Internal server error", false
}

// decodeJSON reads a JSON object body into v. An empty body decodes as {}
// (as Kod's body parser did). Unknown fields, trailing data, bodies over
// 1 MiB and malformed JSON are ErrInvalid with a message naming the problem.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return jsonError(err)
	}
	if dec.More() {
		return forge.Invalid("Invalid JSON body: unexpected data after the JSON object")
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
		return forge.Invalid("Invalid JSON body: unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return forge.Invalid("Request body too large (limit %d bytes)", tooBig.Limit)
	case errors.As(err, &syn):
		return forge.Invalid("Invalid JSON body: %s at byte %d", syn.Error(), syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return forge.Invalid("Invalid JSON body: expected a JSON object")
		}
		return forge.Invalid("Invalid JSON body: field %q must be %s", typ.Field, kindName(typ.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return forge.Invalid("Unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return forge.Invalid("Invalid JSON body: unexpected end of input")
	}
	return forge.Invalid("Invalid JSON body: %v", err)
}

func kindName(k string) string {
	switch k {
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int64", "uint", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return fmt.Sprintf("a %s", k)
}

// storageStatus maps a write the server's own storage refused (the data
// dir full, or its files unwritable for a moment) to an answer that tells
// the user it is the server's condition, passing, and nothing was changed:
// 507 for a full disk, 503 for an unwritable file. Paths stay in the log.
func storageStatus(err error) (int, string, bool) {
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "write" {
		return 0, "", false
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return http.StatusInsufficientStorage, "The server's disk is full: nothing was changed; try again once space is freed", true
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES):
		return http.StatusServiceUnavailable, "The server cannot write its data right now: nothing was changed; try again later", true
	}
	return 0, "", false
}

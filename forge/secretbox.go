package forge

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"golang.org/x/crypto/hkdf"
	"golang.org/x/crypto/scrypt"
)

// sealedPrefix starts every sealed value of scheme v1: AES-256-GCM under a
// key derived as described at SecretKDF, a random 12-byte nonce, and the
// repository and secret name as additional data. A later scheme gets a new
// prefix, so stored values say how to open them.
const sealedPrefix = "v1:"

// Default scrypt costs: about 0.1 s and 32 MiB, paid once per server start.
const (
	defaultScryptN = 1 << 15
	defaultScryptR = 8
	defaultScryptP = 1
)

// ErrSecretKey marks secrets that cannot be opened with the configured key:
// the key is not the one they were sealed with, or the stored record was
// altered or moved to another repository or name.
var ErrSecretKey = errors.New("secret cannot be decrypted")

// SecretKDF says how the AES key is derived from KOD_ENCRYPTION_KEY. It is
// stored in the database (it is not secret) and created once per data dir.
//
// KOD_ENCRYPTION_KEY is typed by people (Kod documents it as any string and
// takes it from a flag), so it may be a low-entropy passphrase: it is
// stretched with scrypt and this installation's random Salt, which makes
// guessing it from a stolen database file expensive. HKDF-SHA256 then splits
// the scrypt output into independent subkeys for encryption and for Check.
type SecretKDF struct {
	Algorithm string `json:"algorithm"` // "scrypt"
	N         int    `json:"n"`
	R         int    `json:"r"`
	P         int    `json:"p"`
	Salt      []byte `json:"salt"` // 16 random bytes
	// Check identifies the key the stored secrets were sealed with (an HMAC
	// of a fixed label under a subkey, hex); empty until first use. It lets
	// the server tell "wrong key" from "tampered record".
	Check string `json:"check,omitempty"`
}

// NewSecretKDF returns scrypt parameters with a fresh random salt and the
// default costs.
func NewSecretKDF() SecretKDF {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic("forge: crypto/rand failed: " + err.Error())
	}
	return SecretKDF{Algorithm: "scrypt", N: defaultScryptN, R: defaultScryptR, P: defaultScryptP, Salt: salt}
}

// SecretBox seals and opens secret values with the key derived from
// KOD_ENCRYPTION_KEY. It is safe for concurrent use.
type SecretBox struct {
	aead  cipher.AEAD
	check string
	// mismatch is set when Check differs from the stored one: existing
	// secrets were sealed with another key, so Seal refuses to mix keys.
	mismatch bool
}

// NewSecretBox derives the keys from key (KOD_ENCRYPTION_KEY, any non-empty
// string) with kdf. Errors: an empty key, or parameters scrypt refuses.
func NewSecretBox(key string, kdf SecretKDF) (*SecretBox, error) {
	if key == "" {
		return nil, errors.New("the encryption key is empty")
	}
	if kdf.Algorithm != "scrypt" {
		return nil, fmt.Errorf("unknown key derivation %q", kdf.Algorithm)
	}
	master, err := scrypt.Key([]byte(key), kdf.Salt, kdf.N, kdf.R, kdf.P, 32)
	// scrypt's work area (128·N·r bytes, 32 MiB by default) is garbage now;
	// without this it stays resident until the heap grows back to it,
	// which an idle server never does (47-51 MB idle instead of ~20).
	debug.FreeOSMemory()
	if err != nil {
		return nil, fmt.Errorf("deriving the secrets key: %w", err)
	}
	encKey, checkKey := make([]byte, 32), make([]byte, 32)
	sub := hkdf.Expand(sha256.New, master, []byte("kod secrets v1: aes-256-gcm"))
	if _, err := io.ReadFull(sub, encKey); err != nil {
		return nil, err
	}
	sub = hkdf.Expand(sha256.New, master, []byte("kod secrets v1: key check"))
	if _, err := io.ReadFull(sub, checkKey); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block) // 12-byte nonce, 16-byte tag
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, checkKey)
	mac.Write([]byte("kod secrets key check"))
	return &SecretBox{aead: aead, check: hex.EncodeToString(mac.Sum(nil))}, nil
}

// Check returns the identifier of this key to store in SecretKDF.Check.
func (b *SecretBox) Check() string { return b.check }

// Mismatch reports whether the stored secrets were sealed with another key.
func (b *SecretBox) Mismatch() bool { return b.mismatch }

// additionalData binds a sealed value to its record: the repository and
// secret name, NUL-separated (neither can contain NUL).
func additionalData(repo, name string) []byte { return []byte(repo + "\x00" + name) }

// Seal encrypts value for secret name of the repository whose id is repo
// (Secret.SealedFor) and returns
// "v1:" + base64(nonce || ciphertext || tag). ErrSecretKey when the stored
// secrets use another key (see Mismatch).
func (b *SecretBox) Seal(repo, name string, value []byte) (string, error) {
	if b.mismatch {
		return "", fmt.Errorf("%w: the encryption key is not the one the stored secrets were saved with", ErrSecretKey)
	}
	return b.seal(repo, name, value), nil
}

func (b *SecretBox) seal(repo, name string, value []byte) string {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(value)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("forge: crypto/rand failed: " + err.Error())
	}
	out := b.aead.Seal(nonce, nonce, value, additionalData(repo, name))
	return sealedPrefix + base64.StdEncoding.EncodeToString(out)
}

// Open decrypts a value sealed for secret name of repository repo. Errors
// wrap ErrSecretKey (wrong key, altered record, or a value sealed for
// another repository or name) or say the format is unknown; they never
// contain the value.
func (b *SecretBox) Open(repo, name, sealed string) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return nil, fmt.Errorf("secret %s of %s: unknown encryption scheme", name, repo)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(raw) < b.aead.NonceSize()+b.aead.Overhead() {
		return nil, fmt.Errorf("secret %s of %s: %w: the stored value is malformed", name, repo, ErrSecretKey)
	}
	ns := b.aead.NonceSize()
	value, err := b.aead.Open(nil, raw[:ns], raw[ns:], additionalData(repo, name))
	if err != nil {
		why := "the encryption key (KOD_ENCRYPTION_KEY) is not the one it was saved with"
		if !b.mismatch {
			why = "the stored record was altered"
		}
		return nil, fmt.Errorf("secret %s of %s: %w: %s", name, repo, ErrSecretKey, why)
	}
	return value, nil
}

// Reseal re-binds a value sealed for oldRepo to newRepo (a value sealed
// for a repository name before ids, moved to the id): it is opened and
// sealed again with a fresh nonce.
func (b *SecretBox) Reseal(oldRepo, newRepo, name, sealed string) (string, error) {
	value, err := b.Open(oldRepo, name, sealed)
	if err != nil {
		return "", err
	}
	defer clear(value)
	return b.seal(newRepo, name, value), nil
}

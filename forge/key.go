package forge

import (
	"crypto/rsa"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// SSHKey is a public key a user signs in with over SSH (Kod API: GET
// /keys). PublicKey is the normalised "<type> <base64>" form (no comment),
// Fingerprint is "SHA256:" + unpadded base64 of the SHA-256 of the wire
// encoding, exactly what `ssh-keygen -lf` prints. CreatedAt is ms since the
// epoch.
type SSHKey struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	Name        string `json:"name"`
	PublicKey   string `json:"publicKey"`
	KeyType     string `json:"keyType"`
	Fingerprint string `json:"fingerprint"`
	CreatedAt   Millis `json:"createdAt"`
	// AddedByTokenID is the id of the token that added the key and
	// AddedByAdmin whether that token held admin then. Together they decide
	// what the key grants (KeyPrincipal): a key added by an admin token
	// speaks for its user, any other key for the token that added it. Keys
	// stored before kod recorded this have neither and grant nothing. Not
	// part of the Kod API.
	AddedByTokenID string `json:"addedByTokenId,omitempty"`
	AddedByAdmin   bool   `json:"addedByAdmin"`
}

// MinRSAKeyBits is the smallest RSA modulus kod accepts.
const MinRSAKeyBits = 2048

// MaxKeyNameLen caps the name of a key, bytes.
const MaxKeyNameLen = 100

// acceptedKeyTypes are the public key algorithms kod accepts: ed25519,
// ECDSA on the NIST curves, and RSA of at least MinRSAKeyBits.
var acceptedKeyTypes = map[string]bool{
	ssh.KeyAlgoED25519:  true,
	ssh.KeyAlgoECDSA256: true,
	ssh.KeyAlgoECDSA384: true,
	ssh.KeyAlgoECDSA521: true,
	ssh.KeyAlgoRSA:      true,
}

// Fingerprint returns the SHA256 fingerprint of k as `ssh-keygen -lf`
// prints it: "SHA256:" + unpadded base64 of the SHA-256 of the wire key.
func Fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// ParsePublicKey parses one key in authorized_keys form ("<type> <base64>
// [comment]", surrounding blank space allowed) and checks that kod accepts
// its type. It returns the parsed key and its comment. Errors are
// ErrInvalid with a message for users: "Invalid SSH public key" for
// anything unparsable, a named refusal for options, several keys, DSA,
// security-key and certificate types, and RSA keys under 2048 bits.
// Kod API: POST /keys (400 invalid key).
func ParsePublicKey(text string) (ssh.PublicKey, string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, "", Invalid("Public key is required")
	}
	key, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		// x/crypto no longer parses some types (ssh-dss): name them anyway.
		if f := strings.Fields(text); len(f) >= 2 && keyTypeRE.MatchString(f[0]) && !acceptedKeyTypes[f[0]] {
			return nil, "", unsupportedType(f[0])
		}
		return nil, "", Invalid("Invalid SSH public key: expected one line like 'ssh-ed25519 AAAA... comment'")
	}
	if len(options) > 0 {
		return nil, "", Invalid("Invalid SSH public key: authorized_keys options (%s) are not allowed", strings.Join(options, ","))
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, "", Invalid("Invalid SSH public key: add one key per request")
	}
	if !acceptedKeyTypes[key.Type()] {
		return nil, "", unsupportedType(key.Type())
	}
	if key.Type() == ssh.KeyAlgoRSA {
		if bits := rsaBits(key); bits < MinRSAKeyBits {
			return nil, "", Invalid("RSA key is %d bits: at least %d bits are required", bits, MinRSAKeyBits)
		}
	}
	return key, comment, nil
}

// keyTypeRE matches the shape of an SSH key type name ("ssh-dss",
// "sk-ssh-ed25519@openssh.com").
var keyTypeRE = regexp.MustCompile(`^(ssh|ecdsa|sk|rsa)-[a-z0-9@.-]{1,60}$`)

func unsupportedType(t string) error {
	return Invalid("Unsupported SSH key type %s: use ed25519, ecdsa, or rsa of at least %d bits", t, MinRSAKeyBits)
}

func rsaBits(k ssh.PublicKey) int {
	ck, ok := k.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return 0
	}
	return rk.N.BitLen()
}

// NewSSHKey builds the record of a key for username from the text of a
// public key (see ParsePublicKey) and an optional name, added by the token
// of principal by (recorded in AddedByTokenID and AddedByAdmin; a nil or
// tokenless by makes a key that grants nothing). Without a name the key's
// comment is used, and without a comment its type. Errors are ErrInvalid:
// the key's, or "Key name must be at most 100 characters".
func NewSSHKey(username, publicKey, name string, by *Principal) (*SSHKey, error) {
	key, comment, err := ParsePublicKey(publicKey)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = truncateRunes(strings.TrimSpace(comment), MaxKeyNameLen)
	}
	if name == "" {
		name = key.Type()
	}
	if len(name) > MaxKeyNameLen || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\r\n") {
		return nil, Invalid("Key name must be at most %d characters on one line", MaxKeyNameLen)
	}
	k := &SSHKey{
		ID:          NewID(),
		Username:    username,
		Name:        name,
		PublicKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))),
		KeyType:     key.Type(),
		Fingerprint: Fingerprint(key),
		CreatedAt:   NowMillis(),
	}
	if by != nil && by.TokenID != "" {
		k.AddedByTokenID, k.AddedByAdmin = by.TokenID, by.IsAdmin()
	}
	return k, nil
}

// truncateRunes cuts s to at most n bytes without splitting a character.
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

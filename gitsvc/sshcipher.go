package gitsvc

import (
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"
)

// sshCiphers are the ciphers the server offers. A client picks the first
// of its own list the server has, and OpenSSH lists chacha20-poly1305
// first; Go's chacha20 has no assembly on amd64 and costs the server about
// twice the CPU of AES-GCM, which runs on AES hardware. So where the CPU
// has AES hardware, chacha20-poly1305 is left out and clients use AES-GCM
// (or AES-CTR with an encrypt-then-MAC MAC, which every OpenSSH, even one
// built without OpenSSL, has). Elsewhere the library's defaults stay (nil).
// Measured: a 50 MB clone spends 0.08 s of server CPU instead of 0.17 s.
func sshCiphers() []string {
	aesHardware := cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ || cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	if !aesHardware {
		return nil
	}
	return []string{
		gossh.CipherAES128GCM, gossh.CipherAES256GCM,
		gossh.CipherAES128CTR, gossh.CipherAES192CTR, gossh.CipherAES256CTR,
	}
}

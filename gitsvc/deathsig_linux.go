package gitsvc

import "syscall"

// dieWithParent has the kernel kill a git child when the thread that
// started it goes (the server killed with SIGKILL leaves no
// pack-objects running on).
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
